import pytest


@pytest.fixture
def relaxed_limits(settings):
    """Rate limits out of the way: Hypothesis sends many requests from one client
    and may repeat an address. (The limits have tests of their own.)"""
    settings.VERIFICATION_CODES_PER_IP_PER_HOUR = 10**6
    settings.VERIFICATION_CODES_PER_ADDRESS_PER_HOUR = 10**6
    settings.VERIFICATION_CODES_PER_ADDRESS_AND_CLIENT_PER_HOUR = 10**6
    settings.VERIFICATION_RESEND_COOLDOWN_SECONDS = 0
    settings.READER_PAGE_REQUESTS_PER_CLIENT_PER_MINUTE = 10**6
    settings.SES_MAX_SEND_RATE = 10_000.0  # the shared pacing schedule never makes a test wait
    settings.SES_SANDBOX = "false"
