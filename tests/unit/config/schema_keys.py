"""Every key a schema allows, as the README's tables name them
(`targets[].retention.keep_daily`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

WRAPPERS = ("digitalocean_droplet.", "hetzner_cloud_server.")


def schema_keys(schema: Mapping) -> dict[str, Mapping]:
    """Return {key path: its schema} for every property, in the order the schema gives them;
    a `default` written beside a `$ref` is part of the key's schema."""
    return dict(_walk(schema, schema, ""))


def _resolve(node: Mapping, root: Mapping) -> Mapping:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _walk(node: Mapping, root: Mapping, prefix: str) -> Iterator[tuple[str, Mapping]]:
    node = _resolve(node, root)
    for keyword in ("oneOf", "anyOf", "allOf"):
        for branch in node.get(keyword, []):
            yield from _walk(branch, root, prefix)
    for key, raw in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        child = _resolve(raw, root)
        if "default" in raw:  # a default beside a $ref belongs to this key
            child = {**child, "default": raw["default"]}
        if path.startswith(WRAPPERS):
            path = path.split(".", 1)[1]
        elif prefix == "" and key in ("digitalocean_droplet", "hetzner_cloud_server"):
            yield from _walk(child, root, key)
            continue
        yield path, child
        yield from _walk(child, root, path)
        if isinstance(child.get("items"), Mapping):
            yield from _walk(child["items"], root, f"{path}[]")
    extra = node.get("additionalProperties")
    if (
        isinstance(extra, Mapping)
        and _resolve(extra, root).get("properties")
        or isinstance(extra, Mapping)
        and any(k in _resolve(extra, root) for k in ("oneOf", "anyOf"))
    ):
        yield from _walk(extra, root, f"{prefix}.<name>" if prefix else "<name>")
