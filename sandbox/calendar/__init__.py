"""Google Calendar v3 under /calendar/v3/: events insert/get/list/patch/update/delete/watch,
freeBusy and channels.stop.

`routes` (the table) -> `handlers` (parse HTTP, call the backend) -> `backend` (the state
and its rules, behind its lock; usable without HTTP) -> `render` (Event resources as
Google writes them). `models` holds the stored shapes, `events` the rules for event
bodies and their occurrences, `query` what a listing selects, `conference` Meet
conferences, `recurrence` RRULE expansion, `notifications` push channels, `auth` the
caller and its scopes, `errors` Calendar's error body. Imports only `sandbox.core`.
"""
