"""The local stack: emulators, the Google sandbox and every function, on one machine."""
