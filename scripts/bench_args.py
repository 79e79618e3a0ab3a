"""What the benchmark entry points share on their command lines."""

import argparse


def parts_of(parts):
    """An argparse ``type`` reading a comma-separated choice of ``parts``."""

    def parse(raw):
        chosen = raw.split(",")
        unknown = [part for part in chosen if part not in parts]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown part(s) {unknown}; choose from {parts}")
        return chosen

    return parse
