"""The pages, one module per page; urls.py names each view by its module."""
