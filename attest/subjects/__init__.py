"""Subjects: the people an identity team onboards, one per external reference and tenant."""
