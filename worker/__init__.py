"""The worker: settles each month when it may be, sends reminders and e-mail (`flattr worker`).
It uses core only, never the gateway or the bots."""
