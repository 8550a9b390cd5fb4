"""Requests the application must not see."""

from django.http import HttpResponseBadRequest


class RejectNulBytes:
    """A NUL byte in the path or a query parameter is a 400: Postgres cannot store or
    compare text with NUL in it, so such a value would otherwise end as a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return HttpResponseBadRequest(
                "Bad request: a NUL character in the address.", content_type="text/plain"
            )
        return self.get_response(request)
