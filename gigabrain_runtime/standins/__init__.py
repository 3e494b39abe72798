"""Stand-ins for real robots: speak a robot's own protocol, for tests and dry runs."""
