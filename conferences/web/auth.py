"""Sign-in throttling: django-axes counts failed sign-ins per user name and per address
and refuses further tries for a while (AXES_* settings)."""

from axes.backends import AxesStandaloneBackend


class LoginThrottle(AxesStandaloneBackend):
    """Axes' check of every sign-in through a web request. An authentication without a
    request (a management command, the test client) cannot be guessed at over the
    network, so it is not counted instead of failing."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
