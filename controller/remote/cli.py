"""`hearth keys`: technicians' signing keys for overrides over MQTT."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_KEY = 0, 1


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = subparsers.add_parser(
        "keys",
        help="technicians' signing keys for overrides over MQTT",
        description="Ed25519 key pairs for technicians. A site trusts the public keys its layout lists under "
        "[[links.atn.technicians]]; `hearth tui --mqtt URL --site ID --key FILE` signs overrides with the private key.",
    )
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new",
        help="make a key pair: NAME.key (private, mode 0600) and NAME.pub",
        description="Make an Ed25519 key pair for technician NAME: NAME.key, the private key, readable by you "
        "alone (keep it on your laptop, never copy it to a site), and NAME.pub, the public key. Prints the lines "
        "to add to a site's layout.",
    )
    new.add_argument("name", metavar="NAME", help="the technician's name (a-z, 0-9, '.', '_', '-'); signs as this")
    new.add_argument(
        "--dir", default=str(Path.home() / ".config" / "hearth"), metavar="DIR", help="where (default ~/.config/hearth)"
    )
    show = actions.add_parser(
        "show",
        help="print the layout lines and fingerprint of a private key",
        description="Check a private key "
        "file (its permissions too) and print the name, fingerprint and the layout lines that trust it.",
    )
    show.add_argument("file", metavar="FILE", help="a NAME.key file")


def _layout_lines(name: str, public: str) -> str:
    return f'[[links.atn.technicians]]\nname = "{name}"\nkey = "{public}"'


def run_cli(args: argparse.Namespace) -> int:
    from controller.remote.keys import KeyFileError, fingerprint, load_private, new_pair, public_text

    try:
        if args.keys_command == "new":
            private_path, public_path = new_pair(args.name, Path(args.dir))
            name, key = load_private(private_path)
        else:
            private_path = Path(args.file)
            name, key = load_private(private_path)
    except KeyFileError as error:
        print(f"hearth keys: {error}", file=sys.stderr)
        return EXIT_KEY
    public = public_text(key.public_key())
    if args.keys_command == "new":
        print(f"private key: {private_path} (mode 0600: keep it to yourself)")
        print(f"public key:  {public_path}")
    print(f"technician {name}, key {fingerprint(key.public_key())}")
    print("A site trusts it with these lines in its layout (and remote_overrides = true in [links.atn]):\n")
    print(_layout_lines(name, public))
    return EXIT_OK
