"""The Catapult boundary: client.py makes the requests (reads only), answers.py reads
what comes back (results, errors, one reader per field). Neither imports Django."""

# Where a new account's requests go unless it names another host.
REAL_API_BASE_URL = "https://api.catapult.inetwork.com"
