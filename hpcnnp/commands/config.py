"""``hpcnnp config``: check a configuration file, list its keys, write its JSON Schema."""

from __future__ import annotations

import argparse
import sys
import textwrap

from hpcnnp.active.config import load_config
from hpcnnp.config.schema import FILE_TYPES, schema_text, write_schemas
from hpcnnp.hpc.sites import load_site
from hpcnnp.md.protocol import load_protocol
from hpcnnp.sampling.tasks import load_campaign
from hpcnnp.workflow.project import load_project

#: file type -> the loader the stages use (the check is the stages' own)
LOADERS = {"project": load_project, "campaign": load_campaign, "protocol": load_protocol,
           "active": load_config, "site": load_site}

_EPILOG = """\
file types: """ + ", ".join(f"{k} ({what})" for k, (_, what) in FILE_TYPES.items()) + """

examples:
  hpcnnp config check examples/llzo_lco/project.yaml
  hpcnnp config check protocol.yaml --type protocol
  hpcnnp config keys campaign
  hpcnnp config schema project -o project.schema.json
  hpcnnp config schema --write docs/schema          # every file type

editors: with the YAML language server, a first line
  # yaml-language-server: $schema=<path>/docs/schema/project.schema.json
gives completion and the documentation of every key.
"""


def register(subparsers):
    p = subparsers.add_parser(
        "config", help="check a configuration file, list its keys, write its JSON Schema",
        description="The configuration files of hpcnnp (project, campaign, protocol, "
        "active, site): check one with the code the stages use, list the keys of a file "
        "type with their defaults and meaning, or write the JSON Schema an editor uses.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    c = sub.add_parser("check", help="check a file (every problem: file, line, key path)")
    c.add_argument("file", metavar="FILE.yaml")
    c.add_argument("--type", choices=list(FILE_TYPES), default=None,
                   help="file type (default: from the file name: project*, campaign*, "
                   "protocol*, active*, else from its folder: sites/)")
    k = sub.add_parser("keys", help="every key of a file type with default and meaning")
    k.add_argument("kind", choices=list(FILE_TYPES))
    s = sub.add_parser("schema", help="JSON Schema of a file type")
    s.add_argument("kind", choices=list(FILE_TYPES), nargs="?")
    s.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    s.add_argument("--write", metavar="DIR", help="write <type>.schema.json of every type")
    p.set_defaults(func=run)
    return p


def _guess(path):
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    for kind in ("project", "campaign", "protocol", "active"):
        if kind in name:
            return kind
    folders = path.replace("\\", "/").split("/")[:-1]
    if "sites" in folders:
        return "site"
    if "campaigns" in folders:
        return "campaign"
    return None


def run(args):
    if args.action == "check":
        kind = args.type or _guess(args.file)
        if kind is None:
            print(f"hpcnnp config: cannot tell the type of {args.file} from its name; "
                  f"give --type ({', '.join(FILE_TYPES)})", file=sys.stderr)
            return 2
        LOADERS[kind](args.file)
        print(f"{args.file}: OK ({kind})")
        return 0
    if args.action == "keys":
        model, what = FILE_TYPES[args.kind]
        print(f"keys of a {what}:")
        for key, typ, default, doc in model.keys_help():
            shown = "required" if default == "required" else f"default: {default!r}"
            print(f"  {key}  ({typ}, {shown})")
            for line in textwrap.wrap(doc, 76, initial_indent="      ",
                                      subsequent_indent="      "):
                print(line)
        return 0
    if args.write:
        for path in write_schemas(args.write):
            print(path)
        return 0
    if args.kind is None:
        print("hpcnnp config schema: give a file type or --write DIR", file=sys.stderr)
        return 2
    text = schema_text(args.kind)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
