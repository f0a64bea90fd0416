"""A quick password hasher for the test process.

Django's default PBKDF2 runs a million rounds per hash (about half a second of CPU), and the
factories hash a password for every user they make. This one writes the same `pbkdf2_sha256`
format with few rounds, which Django verifies with the rounds stored in the hash, so servers and
workers started by tests (on the default settings) accept these users' passwords too.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1_000
