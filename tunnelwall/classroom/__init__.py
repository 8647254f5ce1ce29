"""Classroom exercises: loading, starting, scripted solutions and checks."""
