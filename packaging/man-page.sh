#!/usr/bin/env bash
# man-page.sh XOVER OUT: writes the xover(1) man page, gzipped, to OUT.
#
# The page is generated from the binary's own help (help2man), so it cannot
# drift from the CLI: the top-level --help becomes the synopsis and
# options, and each subcommand's --help becomes a section under COMMANDS.
set -euo pipefail
xover=$1 out=$2
command -v help2man >/dev/null || { echo "man-page.sh: help2man is not installed (apt-get install help2man)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# roff_literal: stdin to roff text that prints as-is in a no-fill block.
roff_literal() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"; }

{
	echo "[NAME]"
	echo "xover \\- a KVM virtual machine monitor with a virtual DMA crossover between VMs"
	echo "[COMMANDS]"
	for sub in $("$xover" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }'); do
		echo ".SS \"xover $sub\""
		echo ".nf"
		"$xover" "$sub" --help | sed "s#^Usage: [^ ]*xover#Usage: xover#" | roff_literal
		echo ".fi"
	done
	echo "[FILES]"
	echo ".TP"
	echo ".I \$XDG_RUNTIME_DIR/xover/broker.sock, /run/xover/broker.sock"
	echo "The crossover broker's socket (the first when XDG_RUNTIME_DIR is set)."
	echo ".TP"
	echo ".I /usr/share/xover/configs"
	echo "Example \\fBxover up\\fR files; they boot the test kernels in /usr/share/xover/guests."
	echo "[SEE ALSO]"
	echo "The user guide and architecture document: /usr/share/doc/xover."
} >"$work/extra.h2m"

help2man --no-info --section=1 --source="xover" --include="$work/extra.h2m" \
	--version-string="$("$xover" --version | awk '{ print $NF }')" "$xover" >"$work/xover.1"
# The binary's own path shows up in the usage lines; the page names the command.
sed -i "s#$(printf '%s' "$xover" | sed 's/[#.\\]/\\&/g')#xover#g" "$work/xover.1"
gzip -9n <"$work/xover.1" >"$out"
