#!/usr/bin/env python3
"""Check the relative links of every Markdown file in the repository.

Usage: python3 scripts/check-links.py [REPO_ROOT]

REPO_ROOT defaults to the repository that holds this script. Every *.md
file under it is read, except under .git and build*/ directories. For each
link written [text](target), ![alt](target) or as a reference definition
([label]: target):

  - http(s):, mailto: and other URL schemes are skipped (no network here);
  - a path must exist, relative to the Markdown file (a leading / means the
    repository root);
  - an anchor (#name, alone or after a path to a Markdown file) must match
    a heading of the target file, slugged as GitHub does: lower case,
    punctuation other than - and _ removed, spaces turned into -, and a
    repeated heading getting -1, -2, ... in order. <a name=...> and id=...
    anchors count too.

Links inside fenced code blocks, inline code and HTML comments are not
links and are ignored. Indented code blocks are not recognised (they are
hard to tell from list continuations without a full parser).

Prints each broken link as FILE:LINE: broken link TARGET (reason) and exits
1 if there is any; otherwise prints one summary line and exits 0. Exit 2:
bad usage. Standard library only.
"""

import os
import re
import sys
import unicodedata
from urllib.parse import unquote

SKIPPED_DIRS = re.compile(r"^(\.git|build.*)$")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
HTML_ANCHOR = re.compile(r"""<[^>]*\b(?:name|id)\s*=\s*["']([^"']+)["'][^>]*>""", re.IGNORECASE)
# [text](target "title"): text may hold one level of brackets, target one
# level of parentheses; <target> may hold spaces.
INLINE_LINK = re.compile(
    r"""(?<!\\)\[((?:\\.|[^\[\]\\]|\[(?:\\.|[^\[\]\\])*\])*)\]"""
    r"""\(\s*(<[^<>\n]*>|(?:[^\s()\\]|\\.|\((?:[^\s()\\]|\\.)*\))*)"""
    r"""(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^)\n]*\)))?\s*\)"""
)
REFERENCE_DEFINITION = re.compile(r"""^ {0,3}\[((?:\\.|[^\]\\])+)\]:\s*(<[^<>\n]*>|\S+)""")


def markdown_files(root):
    """Every *.md under root, sorted, skipping .git and build*/ trees."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not SKIPPED_DIRS.match(d))
        for name in files:
            if name.endswith(".md"):
                found.append(os.path.join(directory, name))
    return sorted(found)


def without_code_spans(text):
    """The line with every `code span` blanked (its length kept)."""
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i : i + 2])
            i += 2
            continue
        if text[i] != "`":
            out.append(text[i])
            i += 1
            continue
        run = len(text[i:]) - len(text[i:].lstrip("`"))
        ticks = "`" * run
        # The closing run must be exactly as long as the opening one.
        close = i + run
        while True:
            close = text.find(ticks, close)
            if close < 0 or not text.startswith("`", close + run):
                break
            close += len(text[close:]) - len(text[close:].lstrip("`"))
        if close < 0:  # no closing run: the backticks are literal
            out.append(ticks)
            i += run
            continue
        out.append(" " * (close + run - i))
        i = close + run
    return "".join(out)


def prose_lines(path):
    """(line number, text, text without code) of the lines outside fenced
    code blocks, with HTML comments blanked; the third has code spans
    blanked too."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    fence = None  # (character, length) of the open fence
    in_comment = False
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= fence[1] and not match.group(2).strip():
                fence = None
            continue
        if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
            fence = (match.group(1)[0], len(match.group(1)))
            continue
        text = line
        if in_comment:
            end = text.find("-->")
            if end < 0:
                continue
            text = " " * (end + 3) + text[end + 3 :]
            in_comment = False
        while True:
            start = text.find("<!--")
            if start < 0:
                break
            end = text.find("-->", start + 4)
            if end < 0:
                text = text[:start]
                in_comment = True
                break
            text = text[:start] + " " * (end + 3 - start) + text[end + 3 :]
        yield number, text, without_code_spans(text)


def heading_text(raw):
    """A heading's text as GitHub renders it (inline markup removed)."""
    text = re.sub(r"[ \t]+#+[ \t]*$", "", raw)  # closing #s
    if re.fullmatch(r"#+", text.strip()):
        text = ""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = text.replace("`", "")
    text = re.sub(r"\*+", "", text)
    return text.strip()


def base_slug(text):
    """GitHub's slug of a heading: lower case, letters, digits, spaces, - and _
    kept, everything else dropped, then each space becomes -."""
    text = text.lower()
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in "-_ " or category[0] in ("L", "N") or category == "Mn":
            kept.append(ch)
    return "".join(kept).replace(" ", "-")


def anchors_of(path, cache):
    """The anchors a Markdown file defines (heading slugs, HTML anchors)."""
    if path in cache:
        return cache[path]
    anchors = set()
    occurrences = {}

    def add_heading(text):
        slug = base_slug(heading_text(text))
        original = slug
        while slug in occurrences:
            occurrences[original] += 1
            slug = "{}-{}".format(original, occurrences[original])
        occurrences[slug] = 0
        anchors.add(slug)

    previous = None  # the last prose line, for setext headings
    last_number = None
    for number, text, prose in prose_lines(path):
        for name in HTML_ANCHOR.findall(prose):
            anchors.add(name)
        atx = ATX_HEADING.match(text)
        setext = SETEXT_UNDERLINE.match(text)
        if atx:
            add_heading(atx.group(2) or "")
            previous = None
        elif (
            setext
            and previous is not None
            and last_number == number - 1
            and previous.strip()
            and not previous.lstrip().startswith(("-", "*", "+", ">", "|"))
        ):
            add_heading(previous.strip())
            previous = None
        else:
            previous = text
        last_number = number
    cache[path] = anchors
    return anchors


def links_in(path):
    """(line number, target) of every link in a Markdown file."""
    for number, _, text in prose_lines(path):
        definition = REFERENCE_DEFINITION.match(text)
        if definition:
            yield number, definition.group(2)
            continue
        for match in INLINE_LINK.finditer(text):
            yield number, match.group(2)


def check(root):
    root = os.path.realpath(root)
    files = markdown_files(root)
    cache = {}
    broken = []
    checked = skipped = 0
    for md in files:
        shown = os.path.relpath(md, root)
        for number, raw in links_in(md):
            target = raw[1:-1] if raw.startswith("<") and raw.endswith(">") else raw
            target = re.sub(r"\\(.)", r"\1", target)
            if not target:
                broken.append((shown, number, raw or "()", "empty target"))
                continue
            if SCHEME.match(target) or target.startswith("//"):
                skipped += 1
                continue
            checked += 1
            path_part, _, anchor = target.partition("#")
            path_part = unquote(path_part.split("?", 1)[0])
            anchor = unquote(anchor)
            if path_part:
                base = root if path_part.startswith("/") else os.path.dirname(md)
                resolved = os.path.realpath(os.path.join(base, path_part.lstrip("/")))
                if resolved != root and not resolved.startswith(root + os.sep):
                    broken.append((shown, number, target, "points outside the repository"))
                    continue
                if not os.path.exists(resolved):
                    broken.append((shown, number, target, "no such file: " + os.path.relpath(resolved, root)))
                    continue
            else:
                resolved = md
            if not anchor:
                continue
            if os.path.isdir(resolved):
                readme = os.path.join(resolved, "README.md")
                if not os.path.isfile(readme):
                    broken.append((shown, number, target, "an anchor into a directory without a README.md"))
                    continue
                resolved = readme
            if not resolved.endswith(".md"):
                continue  # anchors of other files (line numbers, ...) are not checked
            if anchor not in anchors_of(resolved, cache):
                broken.append(
                    (shown, number, target, "no heading with anchor #{} in {}".format(anchor, os.path.relpath(resolved, root)))
                )
    for shown, number, target, reason in broken:
        print("{}:{}: broken link {} ({})".format(shown, number, target, reason))
    if broken:
        print(
            "check-links: {} broken link(s) in {} Markdown file(s) ({} links checked)".format(
                len(broken), len({b[0] for b in broken}), checked
            ),
            file=sys.stderr,
        )
        return 1
    print(
        "check-links: {} Markdown files, {} relative links checked, none broken ({} external links skipped)".format(
            len(files), checked, skipped
        )
    )
    return 0


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    root = argv[1] if len(argv) == 2 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(root):
        print("check-links: {} is not a directory".format(root), file=sys.stderr)
        return 2
    return check(root)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
