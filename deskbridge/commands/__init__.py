"""The CLI's command groups (org, member, token, desk), registered on the app by `deskbridge.cli`."""
