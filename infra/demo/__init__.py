"""`shop demo`: start the system on a fresh embedded data dir, drive it the way customers
would, check the invariants, print a report. Non-zero exit on any violation."""
