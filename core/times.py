"""Times on the wire: milliseconds since the epoch, as Thinger.io clients send and read them."""


def to_ms(moment):
    """A datetime as milliseconds since the epoch; None stays None."""
    return None if moment is None else int(moment.timestamp() * 1000)
