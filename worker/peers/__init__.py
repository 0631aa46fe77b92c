"""Peer platforms (When I Work, Kadence, Resource Guru): their people as a directory, their events as calendars."""
