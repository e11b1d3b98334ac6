# Integration tests (Python, real daemon on loopback).
