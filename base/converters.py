"""URL converters."""


class RowId:
    """A database id in a URL: digits that fit a 64-bit integer. Django's ``int`` takes any
    length, and an id past the database's range is a 500 instead of a 404."""

    regex = "[0-9]{1,18}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(value)
