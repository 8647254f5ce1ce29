"""``tunnelwall images build [NAME ...] | list``."""

from __future__ import annotations

from tunnelwall.cli.main import _print_table, sub_verbs, verb


def cmd_images(args) -> int:
    from tunnelwall.topologies import dockerd
    from tunnelwall.topologies import images
    from tunnelwall.runtime.network import require_root
    require_root()
    recipes = images.recipes()
    if args.action == "build":
        for name in args.names or list(recipes):
            images.build(name, force=args.force)
        return 0
    rows = []
    for name, recipe in recipes.items():
        tag = images.tag(name, recipe)
        rows.append({"image": name, "tag": tag, "built": "yes" if dockerd.running() and dockerd.image_exists(tag) else "no",
                     "packages": len(recipe["packages"]), "description": recipe["description"]})
    _print_table(rows, ["image", "tag", "built", "packages", "description"])
    return 0


@verb
def add_images(sub) -> None:
    p = sub.add_parser("images", help="build or list the node images of container nodes")
    p.set_defaults(func=cmd_images, names=[], force=False)
    actions = sub_verbs(p)
    b = actions.add_parser("build", help="build node images (Docker), skipping those up to date")
    b.add_argument("names", nargs="*", help="images to build (default: all)")
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    actions.add_parser("list", help="the image recipes, their tags and whether each is built")
