"""Running the processes: the checks gunicorn's master makes before any worker starts, the
gunicorn worker class that faces clients directly, and the embedded default's maintenance
timer."""
