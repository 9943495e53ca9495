#!/usr/bin/env python3
"""The largest parts of a wasm module (`make size`): its sections (raw and gzip -9) and its code
by crate (or by teamkeys module), from the function names in its `name` section.

Usage: scripts/wasm-parts.py FILE [TOP]"""
import collections
import gzip
import re
import sys

SECTION_NAMES = {0: 'custom', 1: 'type', 2: 'import', 3: 'function', 5: 'memory', 6: 'global', 7: 'export',
                 9: 'element', 10: 'code', 11: 'data', 12: 'data count'}


def leb(data, at):
    """The unsigned LEB128 number at `at`, and the position after it."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def name(data, at):
    length, at = leb(data, at)
    return data[at:at + length].decode('utf8', 'replace'), at + length


def sections(module):
    at = 8
    while at < len(module):
        kind = module[at]
        size, at = leb(module, at + 1)
        yield kind, module[at:at + size]
        at += size


def imported_functions(imports):
    count, at = leb(imports, 0)
    functions = 0
    for _ in range(count):
        _, at = name(imports, at)
        _, at = name(imports, at)
        kind = imports[at]
        at += 1
        if kind == 0:  # function: a type index
            _, at = leb(imports, at)
            functions += 1
        elif kind == 1:  # table: element type, limits
            flags, at = leb(imports, at + 1)
            _, at = leb(imports, at)
            if flags & 1:
                _, at = leb(imports, at)
        elif kind == 2:  # memory: limits
            flags, at = leb(imports, at)
            _, at = leb(imports, at)
            if flags & 1:
                _, at = leb(imports, at)
        elif kind == 3:  # global: value type, mutability
            at += 2
    return functions


def function_names(names):
    found, at = {}, 0
    while at < len(names):
        subsection = names[at]
        size, at = leb(names, at + 1)
        if subsection == 1:
            count, inner = leb(names, at)
            for _ in range(count):
                index, inner = leb(names, inner)
                found[index], inner = name(names, inner)
        at += size
    return found


def owner(function):
    """The crate of a function, or `teamkeys::module` for the project's own."""
    path = [word for word in re.findall(r'[A-Za-z_][A-Za-z0-9_]*', function) if word not in ('mut', 'dyn', 'impl')]
    if not path:
        return function[:30]
    if path[0] == 'teamkeys' and len(path) > 1:
        return '::'.join(path[:2])
    return path[0]


def main():
    module = open(sys.argv[1], 'rb').read()
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    parts, code, names, imports = [], b'', {}, b''
    for kind, body in sections(module):
        label = SECTION_NAMES.get(kind, str(kind))
        if kind == 0:
            custom, at = name(body, 0)
            label = f'custom "{custom}"'
            if custom == 'name':
                names = function_names(body[at:])
        elif kind == 10:
            code = body
        elif kind == 2:
            imports = body
        parts.append((len(body), len(gzip.compress(body, 9)), label))
    print(f'{sys.argv[1]}: sections over 4 KB (raw, gzip -9)')
    for raw, packed, label in sorted(parts, reverse=True):
        if raw > 4096:
            print(f'  {raw:>10,} {packed:>10,}  {label}')
    first = imported_functions(imports) if imports else 0
    by_owner = collections.Counter()
    count, at = leb(code, 0)
    for index in range(count):
        size, body_at = leb(code, at)
        by_owner[owner(names.get(first + index, '?'))] += size + (body_at - at)
        at = body_at + size
    print(f'  code by crate or module (raw bytes; top {top}):')
    for who, size in by_owner.most_common(top):
        print(f'  {size:>10,}  {who}')


main()
