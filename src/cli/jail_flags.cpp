#include "commands.hpp"

namespace xover::cli {

void add_jail_flags(CLI::App& app, vmm::JailFlags& flags) {
    const char* group = "Jail (root only; docs/user-guide.md#the-jail)";
    app.add_option("--uid", flags.uid, "Once set up, run as this user (a name or a number)")
        ->type_name("USER")
        ->group(group);
    app.add_option("--gid", flags.gid, "... and this group (default: the user's own)")->type_name("GROUP")->group(group);
    app.add_option("--chroot", flags.chroot,
                   "Once set up, make DIR the root (in a mount namespace of its own; the directories of its "
                   "sockets are bind-mounted at their own paths inside)")
        ->type_name("DIR")
        ->group(group);
    app.add_option("--namespaces", flags.namespaces, "Fresh namespaces: a comma list of mount, pid and net")
        ->type_name("LIST")
        ->group(group);
}

std::vector<std::string> jail_flag_args(const vmm::JailFlags& flags) {
    std::vector<std::string> args;
    auto add = [&](const char* flag, const std::string& value) {
        if (!value.empty()) args.insert(args.end(), {flag, value});
    };
    add("--uid", flags.uid);
    add("--gid", flags.gid);
    add("--chroot", flags.chroot);
    add("--namespaces", flags.namespaces);
    return args;
}

}  // namespace xover::cli
