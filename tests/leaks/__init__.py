"""Secret leaks found by attacking the clients from outside (issue 9), kept as regression tests."""
