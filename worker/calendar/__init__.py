"""Calendar sync: external events in, office days as bookings, bookings out to calendars and feeds."""
