// TOML files and flags: precedence, and one test per validation error.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "config_dir.hpp"
#include "xover/error.hpp"
#include "xover/vmm/config_parser.hpp"

using namespace xover::vmm;
using namespace xover::test;
namespace fs = std::filesystem;

namespace {

std::string cmdline_of(const fs::path& config) { return xover::test::run_file(config).cmdline; }

}  // namespace

TEST_CASE("a full vm.toml", "[config]") {
    ConfigDir d;
    d.write("initrd.img", "rd");
    RunOptions opts;
    opts.config = d.vm_toml(R"(
name = "vm-a"
cmdline = "console=ttyS0"
initrd = "initrd.img"
mem = "256M"
cpus = 2
console = "file:serial.log"
stats = true
log_level = "debug"
cpu_template = "baseline"
broker = "/run/xover.sock"
crossover = ["vm-b"]

[[nic]]
model = "virtio-net"
mac = "52:54:00:00:00:01"
backend = "udp:5000@127.0.0.1:5001"
mode = "window"
ioeventfd = false

[[nic]]
crossover = "auto"
)");
    const VmConfig cfg = resolve_run_config(opts);
    CHECK(cfg.name == "vm-a");
    CHECK(cfg.kernel == d.kernel);  // relative to the file's directory
    CHECK(cfg.cmdline == "console=ttyS0");
    CHECK(cfg.initrd == d.dir / "initrd.img");
    CHECK(cfg.memory_bytes == 256ull << 20);
    CHECK(cfg.cpus == 2);
    CHECK(cfg.console == "file:" + (d.dir / "serial.log").string());
    CHECK(cfg.stats == StatsMode::NonZero);
    CHECK_FALSE(cfg.metrics);
    CHECK(cfg.metrics_interval == std::chrono::seconds(60));
    CHECK(cfg.log_level == "debug");
    CHECK(cfg.cpu_template == "baseline");
    CHECK(cfg.broker == fs::path("/run/xover.sock"));
    REQUIRE(cfg.nics.size() == 2);
    CHECK(cfg.nics[0].model == NicModel::VirtioNet);
    CHECK(cfg.nics[0].mac == parse_mac("52:54:00:00:00:01"));
    CHECK(to_string(cfg.nics[0].backend) == "udp:5000@127.0.0.1:5001");
    CHECK(cfg.nics[0].crossover == std::vector<std::string>{"vm-b"});  // top-level crossover -> first NIC
    CHECK(cfg.nics[0].crossover_mode == CrossoverMode::Window);
    CHECK(cfg.nics[0].ioeventfd == false);
    CHECK(cfg.nics[1].model == NicModel::E1000);
    CHECK_FALSE(cfg.nics[1].ioeventfd);  // unset
    CHECK(cfg.nics[1].mac == default_mac("vm-a", 1));
    CHECK(cfg.nics[1].crossover == std::vector<std::string>{"auto"});
}

TEST_CASE("defaults: flags only", "[config]") {
    ConfigDir d;
    RunOptions opts;
    opts.kernel = d.kernel.string();
    const VmConfig cfg = resolve_run_config(opts);
    CHECK(cfg.name == "vm");
    CHECK(cfg.memory_bytes == 128ull << 20);
    CHECK(cfg.cpus == 1);
    CHECK(cfg.console == "stdout");
    CHECK(cfg.log_level == "warn");
    CHECK(cfg.nics.empty());
    CHECK_FALSE(cfg.broker);
}

TEST_CASE("flags override the file", "[config]") {
    ConfigDir d;
    const fs::path other = d.write("other.elf", "x");
    RunOptions opts;
    opts.config = d.vm_toml(R"(
name = "from-file"
mem = "64M"
cpus = 4
console = "none"
stats = true
crossover = ["vm-x"]
[[nic]]
model = "virtio-net"
)");
    opts.name = "from-flag";
    opts.kernel = other.string();
    opts.mem = "1G";
    opts.cpus = 3;
    opts.stats = "all";
    opts.nics = {"e1000,backend=tap:xt0", "virtio-net"};
    opts.crossover = {"vm-y+vm-z"};
    const VmConfig cfg = resolve_run_config(opts);
    CHECK(cfg.name == "from-flag");
    CHECK(cfg.kernel == other);
    CHECK(cfg.memory_bytes == 1ull << 30);
    CHECK(cfg.cpus == 3);
    CHECK(cfg.console == "none");  // not overridden: file value stays
    CHECK(cfg.stats == StatsMode::All);
    REQUIRE(cfg.nics.size() == 2);  // --nic replaces the file's list
    CHECK(cfg.nics[0].model == NicModel::E1000);
    CHECK(to_string(cfg.nics[0].backend) == "tap:xt0");
    CHECK(cfg.nics[0].crossover == std::vector<std::string>{"vm-y", "vm-z"});
    CHECK(cfg.nics[0].mac == default_mac("from-flag", 0));
}

TEST_CASE("a flag kernel rescues a file naming a missing kernel", "[config]") {
    ConfigDir d;
    RunOptions opts;
    opts.config = d.write("vm.toml", "kernel = \"gone.elf\"\n");
    CHECK_THAT(error_of([&] { resolve_run_config(opts); }), Catch::Contains("gone.elf\" cannot be read"));
    opts.kernel = d.kernel.string();
    CHECK(resolve_run_config(opts).kernel == d.kernel);
}

TEST_CASE("crossover flag without a NIC adds a default e1000", "[config]") {
    ConfigDir d;
    RunOptions opts;
    opts.kernel = d.kernel.string();
    opts.name = "vm-a";
    opts.crossover = {"auto"};
    const VmConfig cfg = resolve_run_config(opts);
    REQUIRE(cfg.nics.size() == 1);
    CHECK(cfg.nics[0].model == NicModel::E1000);
    CHECK(to_string(cfg.nics[0].backend) == "none");
    CHECK(cfg.nics[0].crossover == std::vector<std::string>{"auto"});
}

TEST_CASE("file errors name the file, line, key and value", "[config][errors]") {
    ConfigDir d;
    const std::string f = (d.dir / "vm.toml").string();

    SECTION("malformed size") {
        CHECK(run_error(d.vm_toml("mem = \"12Q\"\n")) == f + ":2: key \"mem\": \"12Q\" is not a size (use 64M, 1G)");
    }
    SECTION("unknown key") {
        CHECK_THAT(run_error(d.vm_toml("memory = \"64M\"\n")),
                   Catch::StartsWith(f + ":2: key \"memory\": unknown key (known: name, kernel,"));
    }
    SECTION("ioeventfd off on an e1000") {
        CHECK_THAT(run_error(d.vm_toml("[[nic]]\nmodel = \"e1000\"\nioeventfd = false\n")),
                   Catch::Contains("ioeventfd=off is for virtio-net NICs"));
    }
    SECTION("a table header no key can start is a syntax error, not an abort") {
        // Found by tests/fuzz/fuzz_toml_config: toml++ asserted (a debug
        // build aborted) on these instead of reporting them.
        CHECK_THAT(run_error(d.vm_toml("[#nic]]\n")), Catch::StartsWith(f + ":2:2: TOML syntax error:"));
        CHECK_THAT(run_error(d.vm_toml(std::string("[\x10nic]]\n", 8))), Catch::StartsWith(f + ":2:2: TOML syntax error:"));
        CHECK_THAT(run_error(d.vm_toml("[[ =vm]]\n")), Catch::Contains("TOML syntax error"));
    }
    SECTION("non-ASCII outside strings and comments is a syntax error; inside them it is kept") {
        // Found by tests/fuzz/fuzz_toml_config: toml++ 3.3 reached
        // __builtin_unreachable on U+0498 in a table header.
        CHECK(run_error(d.vm_toml("[[vm\xd2\x98ic]]\n")) ==
              f + ":2:5: TOML syntax error: a non-ASCII character outside a string or comment");
        CHECK(run_error(d.vm_toml("# caf\xc3\xa9 \"\ncmdline = \"\xd2\x98 '\\\"\"\ncpus = 2 # \xe2\x80\x94\n")) ==
              "(no error)");
        CHECK(run_error(d.vm_toml("cmdline = '''\n\xd2\x98\n'''\nname = \"x\" \xd2\x98\n")) ==
              f + ":5:12: TOML syntax error: a non-ASCII character outside a string or comment");
        // A quote that opens no string (toml++ reads `5"..."` as one value).
        CHECK(run_error(d.vm_toml("cpus = 5\"\xd1\x9d\"\n")) ==
              f + ":2:10: TOML syntax error: a non-ASCII character outside a string or comment");
        // A backslash before a non-ASCII character (the long run: toml++
        // asked whether U+FEDF after `\` in a """ string is whitespace).
        CHECK(run_error(d.vm_toml("cmdline = \"\"\"a\\\xef\xbb\x9f\"\"\"\n")) ==
              f + ":2:16: TOML syntax error: a backslash before a non-ASCII character (no such escape)");
        CHECK(run_error(d.vm_toml("cmdline = \"\\\\\xef\xbb\x9f\"\n")) == "(no error)");  // an escaped backslash, then text
        // toml++ never sees a non-ASCII byte (config_ascii.cpp): a
        // line-ending backslash, then U+FEDF past the spaces and newlines it
        // trims (a 10 s CI-length run: toml++ asked whether U+FEDF there is
        // whitespace), and the long run's `-{{...{'\\` then U+FEDF.
        CHECK(cmdline_of(d.vm_toml("cmdline = \"\"\"a\\\n  \xef\xbb\x9f\"\"\"\n")) == "a\xef\xbb\x9f");
        CHECK_THAT(run_error(d.vm_toml("cmdline = \"\"\"a\\  \xef\xbb\x9f\"\"\"\n")),
                   Catch::StartsWith(f + ":2:") && Catch::Contains("TOML syntax error"));  // `\ ` is no escape
        CHECK_THAT(run_error(d.vm_toml("cmdline = -{{'\\\xef\xbb\x9f\"\n")), Catch::Contains("TOML syntax error"));
        // Every kind of string keeps its value; comments may hold anything.
        CHECK(cmdline_of(d.vm_toml("cmdline = \"\xc3\xa9 \xf0\x9f\x98\x80\" # \xd2\x98\n")) == "\xc3\xa9 \xf0\x9f\x98\x80");
        CHECK(cmdline_of(d.vm_toml("cmdline = 'C:\\p\"\xd2\x98'\n")) == "C:\\p\"\xd2\x98");
        CHECK(cmdline_of(d.vm_toml("cmdline = \'\'\'\n\\a\"\"\"\xe2\x80\x94\'\'\'\'\n")) == "\\a\"\"\"\xe2\x80\x94\'");
        CHECK(cmdline_of(d.vm_toml("cmdline = 'plain \\ ascii'\n")) == "plain \\ ascii");
        CHECK(cmdline_of(d.write("bom.toml", "\xef\xbb\xbfkernel = \"kernel.elf\"\ncmdline = \"x\"\n")) == "x");  // a byte-order mark
        CHECK(run_error(d.vm_toml("cmdline = \"\xc3\x28\"\n")) == f + ":2:12: TOML syntax error: a byte that is not UTF-8");
    }
    SECTION("unknown key in [[nic]]") {
        CHECK_THAT(run_error(d.vm_toml("[[nic]]\nspeed = 10\n")),
                   Catch::StartsWith(f + ":3: key \"nic[0].speed\": unknown key"));
    }
    SECTION("wrong types") {
        CHECK(run_error(d.vm_toml("cpus = \"4\"\n")) == f + ":2: key \"cpus\": expected an integer, got the string \"4\"");
        CHECK(run_error(d.vm_toml("stats = 1\n")) ==
              f + ":2: key \"stats\": expected true, false or \"all\", got the integer 1");
        CHECK(run_error(d.vm_toml("stats = \"some\"\n")) ==
              f + ":2: key \"stats\": expected true, false or \"all\", got the string \"some\"");
        CHECK(run_error(d.vm_toml("metrics = 1\n")) == f + ":2: key \"metrics\": expected a string, got the integer 1");
        CHECK(run_error(d.vm_toml("metrics = \"m\"\nmetrics_interval = \"1\"\n")) ==
              f + ":3: key \"metrics_interval\": expected a number of seconds, got the string \"1\"");
        CHECK(run_error(d.vm_toml("name = 3\n")) == f + ":2: key \"name\": expected a string, got the integer 3");
        CHECK_THAT(run_error(d.vm_toml("mem = 1.5\n")), Catch::Contains("expected a size such as \"128M\""));
        CHECK_THAT(run_error(d.vm_toml("nic = 1\n")), Catch::Contains("expected [[nic]] tables"));
        CHECK_THAT(run_error(d.vm_toml("crossover = [1]\n")), Catch::Contains("expected VM names"));
    }
    SECTION("memory limits") {
        CHECK(run_error(d.vm_toml("mem = \"8M\"\n")) == f + ":2: key \"mem\": \"8M\" is less than the minimum memory of 16M");
        CHECK(run_error(d.vm_toml("mem = \"65G\"\n")) == f + ":2: key \"mem\": \"65G\" is more than the maximum memory of 64G");
        CHECK_THAT(run_error(d.vm_toml("mem = 1000\n")), Catch::Contains("less than the minimum"));
        CHECK_THAT(run_error(d.vm_toml("mem = -5\n")), Catch::Contains("is not a size"));
        CHECK_THAT(run_error(d.vm_toml("mem = 100000001\n")), Catch::Contains("not a multiple of 4K"));
        RunOptions opts;
        opts.config = d.vm_toml("mem = 67108864\n");
        CHECK(resolve_run_config(opts).memory_bytes == 64ull << 20);
    }
    SECTION("cpus") {
        CHECK(run_error(d.vm_toml("cpus = 0\n")) == f + ":2: key \"cpus\": 0 vCPUs is out of range (1 to 64)");
        CHECK_THAT(run_error(d.vm_toml("cpus = 65\n")), Catch::Contains("65 vCPUs is out of range"));
    }
    SECTION("missing kernel") {
        CHECK(run_error(d.write("vm.toml", "name = \"a\"\n")) ==
              f + ": no kernel given (use --kernel PATH or kernel = \"PATH\")");
    }
    SECTION("unreadable kernel") {
        CHECK_THAT(run_error(d.write("vm.toml", "kernel = \"nope.elf\"\n")),
                   Catch::StartsWith(f + ":1: key \"kernel\": \"" + (d.dir / "nope.elf").string() + "\" cannot be read"));
        CHECK_THAT(run_error(d.write("vm.toml", "kernel = \".\"\n")), Catch::Contains("not a regular file"));
    }
    SECTION("unreadable initrd") {
        CHECK_THAT(run_error(d.vm_toml("initrd = \"rd.img\"\n")), Catch::Contains("key \"initrd\": \""));
    }
    SECTION("malformed MAC") {
        CHECK(run_error(d.vm_toml("[[nic]]\nmac = \"52:54:00:zz:00:01\"\n")) ==
              f + ":3: key \"nic[0].mac\": \"52:54:00:zz:00:01\" is not a MAC address (use 52:54:00:12:34:56)");
    }
    SECTION("model") {
        CHECK(run_error(d.vm_toml("[[nic]]\nmodel = \"rtl8139\"\n")) ==
              f + ":3: key \"nic[0].model\": \"rtl8139\" is not a NIC model (use e1000 or virtio-net)");
    }
    SECTION("backend") {
        CHECK_THAT(run_error(d.vm_toml("[[nic]]\nbackend = \"udp:5000\"\n")),
                   Catch::StartsWith(f + ":3: key \"nic[0].backend\": \"udp:5000\" is not a valid backend"));
    }
    SECTION("crossover mode") {
        CHECK(run_error(d.vm_toml("[[nic]]\nmode = \"zero\"\n")) ==
              f + ":3: key \"nic[0].mode\": \"zero\" is not a crossover mode (use copy or window)");
    }
    SECTION("duplicate MAC within a VM") {
        CHECK(run_error(d.vm_toml("[[nic]]\nmac = \"52:54:00:00:00:01\"\n[[nic]]\nmac = \"52:54:00:00:00:01\"\n")) ==
              f + ":5: key \"nic[1].mac\": MAC 52:54:00:00:00:01 is already used by nic[0] of VM \"vm\"");
    }
    SECTION("console") {
        CHECK(run_error(d.vm_toml("console = \"serial\"\n")) ==
              f + ":2: key \"console\": \"serial\" is not a console (use stdout, none or file:PATH)");
        CHECK_THAT(run_error(d.vm_toml("console = \"file:\"\n")), Catch::Contains("is not a console"));
    }
    SECTION("log level, cpu template, name") {
        CHECK_THAT(run_error(d.vm_toml("log_level = \"loud\"\n")), Catch::Contains("\"loud\" is not a log level"));
        CHECK_THAT(run_error(d.vm_toml("cpu_template = \"T2\"\n")), Catch::Contains("\"T2\" is not a CPU template"));
        CHECK_THAT(run_error(d.vm_toml("name = \"my vm\"\n")), Catch::Contains("\"my vm\" is not a valid VM name"));
        CHECK_THAT(run_error(d.vm_toml("name = \"auto\"\n")), Catch::Contains("reserved"));
    }
    SECTION("self crossover") {
        CHECK(run_error(d.vm_toml("name = \"a\"\ncrossover = [\"a\"]\n")) ==
              f + ":3: key \"crossover\": VM \"a\" cannot be its own crossover peer");
    }
    SECTION("TOML syntax") {
        CHECK_THAT(run_error(d.vm_toml("mem = \n")), Catch::StartsWith(f + ":2:"));
        CHECK_THAT(run_error(d.vm_toml("mem = \n")), Catch::Contains("TOML syntax error"));
    }
    SECTION("config file missing") {
        CHECK_THAT(run_error(d.dir / "absent.toml"), Catch::StartsWith("--config: \""));
    }
}

TEST_CASE("flag errors name the flag and value", "[config][errors]") {
    ConfigDir d;
    auto err = [&](auto change) { return flag_error(d, change); };
    CHECK(err([](RunOptions& o) { o.mem = "12Q"; }) == "--mem: \"12Q\" is not a size (use 64M, 1G)");
    CHECK(err([](RunOptions& o) { o.mem = "15M"; }) == "--mem: \"15M\" is less than the minimum memory of 16M");
    CHECK(err([](RunOptions& o) { o.mem = "128G"; }) == "--mem: \"128G\" is more than the maximum memory of 64G");
    CHECK(err([](RunOptions& o) { o.cpus = 0; }) == "--cpus: 0 vCPUs is out of range (1 to 64)");
    CHECK(err([](RunOptions& o) { o.cpus = -1; }) == "--cpus: -1 vCPUs is out of range (1 to 64)");
    CHECK(err([](RunOptions& o) { o.cpus = 65; }) == "--cpus: 65 vCPUs is out of range (1 to 64)");
    CHECK(err([](RunOptions& o) { o.console = "tty"; }) ==
          "--console: \"tty\" is not a console (use stdout, none or file:PATH)");
    CHECK(err([](RunOptions& o) { o.kernel = "/no/such/kernel"; }) ==
          "--kernel: \"/no/such/kernel\" cannot be read: No such file or directory");
    CHECK(err([](RunOptions& o) { o.kernel.reset(); }) ==
          "command line: no kernel given (use --kernel PATH or kernel = \"PATH\")");
    CHECK(err([](RunOptions& o) { o.initrd = "/no/initrd"; }) ==
          "--initrd: \"/no/initrd\" cannot be read: No such file or directory");
    CHECK(err([](RunOptions& o) { o.nics = {"e1000,mac=52:54:00:00:00:xx"}; }) ==
          "--nic \"e1000,mac=52:54:00:00:00:xx\": mac: \"52:54:00:00:00:xx\" is not a MAC address (use "
          "52:54:00:12:34:56)");
    CHECK(err([](RunOptions& o) { o.nics = {"ne2k"}; }) ==
          "--nic \"ne2k\": \"ne2k\" is not a NIC model (use e1000 or virtio-net)");
    CHECK(err([](RunOptions& o) { o.nics = {"e1000,mac=52:54:00:00:00:01", "virtio-net,mac=52:54:00:00:00:01"}; }) ==
          "--nic \"virtio-net,mac=52:54:00:00:00:01\": MAC 52:54:00:00:00:01 is already used by nic[0] of VM \"vm\"");
    CHECK_THAT(err([](RunOptions& o) { o.nics = {"e1000,mode=zerocopy"}; }),
               Catch::Contains("is not a crossover mode"));
    CHECK_THAT(err([](RunOptions& o) { o.nics = {"e1000,backend=tcp:1"}; }), Catch::Contains("is not a valid backend"));
    CHECK(err([](RunOptions& o) { o.name = "a"; o.crossover = {"a"}; }) ==
          "--crossover: VM \"a\" cannot be its own crossover peer");
    CHECK_THAT(err([](RunOptions& o) { o.crossover = {"auto", "b"}; }), Catch::Contains("\"auto\" cannot be combined"));
    CHECK_THAT(err([](RunOptions& o) { o.log_level = "verbose"; }), Catch::StartsWith("--log-level: "));
    CHECK_THAT(err([](RunOptions& o) { o.cpu_template = "x"; }), Catch::StartsWith("--cpu-template: "));
    CHECK(err([](RunOptions& o) { o.cpu_template = "host"; }) == "(no error)");
    CHECK_THAT(err([](RunOptions& o) { o.name = ""; }), Catch::StartsWith("--name: "));
}

TEST_CASE("parse_vm_table and validate_vm_config", "[config]") {
    ConfigDir d;
    auto table = toml::parse("kernel = \"" + d.kernel.string() + "\"\nname = \"t\"\n");
    const VmConfig cfg = parse_vm_table(table, "inline");
    CHECK(cfg.name == "t");

    VmConfig manual;
    manual.kernel = d.kernel;
    manual.nics.emplace_back();
    validate_vm_config(manual, "manual");
    CHECK(manual.nics[0].mac == default_mac("vm", 0));

    manual.memory_bytes = 1;
    CHECK(error_of([&] { validate_vm_config(manual, "manual"); }) ==
          "manual: key \"mem\": \"1\" is less than the minimum memory of 16M");

    manual.memory_bytes = 64ull << 20;
    manual.nics[0].backend = xover::net::TapSpec{"a/b"};  // a spec built by hand is checked as text
    CHECK_THAT(error_of([&] { validate_vm_config(manual, "manual"); }),
               Catch::StartsWith("manual: key \"nic[0].backend\": \"tap:a/b\" is not a valid backend"));
}

TEST_CASE("up files", "[config][up]") {
    ConfigDir d;
    const std::string f = (d.dir / "up.toml").string();

    SECTION("a crossover pair") {
        const auto vms = load_up_file(d.up_toml(R"(
broker = "broker.sock"
[[vm]]
name = "vm-a"
kernel = "kernel.elf"
crossover = ["vm-b"]
[[vm]]
name = "vm-b"
kernel = "kernel.elf"
broker = "/other.sock"
[[vm.nic]]
model = "virtio-net"
crossover = ["vm-a"]
[[vm]]
name = "vm-c"
kernel = "kernel.elf"
crossover = "auto"
)"));
        REQUIRE(vms.size() == 3);
        CHECK(vms[0].broker == d.dir / "broker.sock");
        CHECK(vms[1].broker == fs::path("/other.sock"));
        CHECK(vms[0].nics[0].crossover == std::vector<std::string>{"vm-b"});
        CHECK(vms[1].nics[0].model == NicModel::VirtioNet);
        CHECK(vms[0].nics[0].mac != vms[1].nics[0].mac);
        CHECK(vms[2].nics[0].crossover == std::vector<std::string>{"auto"});
    }
    SECTION("duplicate names") {
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n") ==
              f + ":5: key \"vm[1].name\": VM name \"a\" is also used by vm[0] (give each [[vm]] its own name = \"...\")");
    }
    SECTION("duplicate MACs across VMs") {
        CHECK(d.up_error(R"([[vm]]
name = "a"
kernel = "kernel.elf"
[[vm.nic]]
mac = "52:54:00:00:00:01"
[[vm]]
name = "b"
kernel = "kernel.elf"
[[vm.nic]]
mac = "52:54:00:00:00:01"
)") == f + ":10: key \"vm[1].nic[0].mac\": MAC 52:54:00:00:00:01 is also used by nic[0] of VM \"a\"");
    }
    SECTION("one metrics file a VM") {
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\nmetrics = \"m.json\"\n"
                       "[[vm]]\nname = \"b\"\nkernel = \"kernel.elf\"\nmetrics = \"./m.json\"\n") ==
              f + ":8: key \"vm[1].metrics\": \"" + (d.dir / "./m.json").string() +
                  "\" is also the metrics file of vm[0] (give each VM its own)");
        const auto p = d.up_toml("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\nmetrics = \"a.json\"\nstats = \"all\"\n"
                          "[[vm]]\nname = \"b\"\nkernel = \"kernel.elf\"\nmetrics = \"b.json\"\n"
                          "metrics_interval = 2\n");
        const auto vms = load_up_file(p);
        REQUIRE(vms.size() == 2);
        CHECK(vms[0].metrics == d.dir / "a.json");
        CHECK(vms[0].stats == StatsMode::All);
        CHECK(vms[1].metrics_interval == std::chrono::seconds(2));
    }
    SECTION("peer that is not in the file") {
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\ncrossover = [\"ghost\"]\n") ==
              f + ":4: key \"vm[0].crossover\": crossover peer \"ghost\" is not a VM in this file (VMs: a)");
        CHECK_THAT(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.nic]]\ncrossover = [\"b\", \"ghost\"]\n"
                            "[[vm]]\nname = \"b\"\nkernel = \"kernel.elf\"\n"),
                   Catch::StartsWith(f + ":5: key \"vm[0].nic[0].crossover\": crossover peer \"ghost\""));
    }
    SECTION("errors inside a [[vm]] name its index") {
        CHECK(d.up_error("[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\nmem = \"1X\"\n") ==
              f + ":4: key \"vm[0].mem\": \"1X\" is not a size (use 64M, 1G)");
        CHECK(d.up_error("[[vm]]\nname = \"a\"\n") ==
              f + ": vm[0]: no kernel given (use --kernel PATH or kernel = \"PATH\")");
    }
    SECTION("top level") {
        CHECK_THAT(d.up_error("kernel = \"kernel.elf\"\n"), Catch::StartsWith(f + ":1: key \"kernel\": unknown key"));
        CHECK_THAT(d.up_error("broker = \"b.sock\"\n"), Catch::Contains("no [[vm]] tables"));
        CHECK_THAT(d.up_error("vm = 3\n"), Catch::Contains("expected [[vm]] tables"));
    }
    SECTION("uplink: the broker's switch port to a tap") {
        const std::string vm = "[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n[[vm.nic]]\nbackend = \"broker\"\n";
        const auto cfg = read_up_file(d.up_toml("broker = \"b.sock\"\nuplink = \"tap:xtrio0\"\n" + vm));
        CHECK(cfg.uplink == "tap:xtrio0");
        CHECK(cfg.broker == d.dir / "b.sock");
        CHECK(cfg.vms.size() == 1);
        CHECK_FALSE(read_up_file(d.up_toml(vm)).uplink);
        CHECK(d.up_error("uplink = \"eth0\"\n" + vm) ==
              f + ":1: key \"uplink\": \"eth0\" is not a valid uplink: it is not a tap (use \"tap:IFNAME\" with an "
                  "existing tap: ip tuntap add IFNAME mode tap)");
        CHECK_THAT(d.up_error("uplink = \"tap:a/b\"\n" + vm),
                   Catch::StartsWith(f + ":1: key \"uplink\": \"tap:a/b\" is not a valid uplink: the tap interface"));
        CHECK(d.up_error("uplink = 3\n" + vm) == f + ":1: key \"uplink\": expected \"tap:IFNAME\" (a string)");
        // A port of the file's broker: some NIC must be on that switch.
        CHECK(d.up_error("uplink = \"tap:x0\"\n[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n") ==
              f + ":1: key \"uplink\": no NIC has backend = \"broker\" on this file's broker (the uplink is a port "
                  "of the broker's switch)");
        CHECK_THAT(d.up_error("uplink = \"tap:x0\"\n[[vm]]\nname = \"a\"\nkernel = \"kernel.elf\"\n"
                            "broker = \"/elsewhere.sock\"\n[[vm.nic]]\nbackend = \"broker\"\n"),
                   Catch::Contains("no NIC has backend = \"broker\" on this file's broker"));
    }
}

TEST_CASE("stats and metrics: keys and flags", "[config][metrics]") {
    ConfigDir d;
    auto file = [&](const std::string& rest) {
        RunOptions opts;
        opts.config = d.vm_toml(rest);
        return resolve_run_config(opts);
    };
    CHECK(file("").stats == StatsMode::Off);
    CHECK(file("stats = false\n").stats == StatsMode::Off);
    CHECK(file("stats = true\n").stats == StatsMode::NonZero);
    CHECK(file("stats = \"all\"\n").stats == StatsMode::All);
    const VmConfig m = file("metrics = \"vm.metrics\"\nmetrics_interval = 1\n");
    CHECK(m.metrics == d.dir / "vm.metrics");  // relative to the file
    CHECK(m.metrics_interval == std::chrono::seconds(1));
    CHECK_FALSE(fs::exists(d.dir / "vm.metrics"));  // checked, not created: the machine opens it

    RunOptions flags;
    flags.kernel = d.kernel.string();
    flags.stats = "true";  // what a bare --stats gives
    CHECK(resolve_run_config(flags).stats == StatsMode::NonZero);
    flags.stats = "all";
    flags.metrics = (d.dir / "flag.metrics").string();
    flags.metrics_interval = 5;
    const VmConfig f = resolve_run_config(flags);
    CHECK(f.stats == StatsMode::All);
    CHECK(f.metrics == d.dir / "flag.metrics");
    CHECK(f.metrics_interval == std::chrono::seconds(5));
    CHECK(parse_stats_flag("false") == StatsMode::Off);
    CHECK(to_string(StatsMode::All) == "all");
}

TEST_CASE("stats and metrics: bad values are refused in one line", "[config][metrics][errors]") {
    ConfigDir d;
    const std::string f = (d.dir / "vm.toml").string();
    auto err = [&](auto change) { return flag_error(d, change); };
    CHECK(err([](RunOptions& o) { o.stats = "most"; }) ==
          "--stats: \"most\" is not a choice of counters (use --stats for those that are not 0, or --stats=all)");
    CHECK(err([](RunOptions& o) { o.metrics = "m"; o.metrics_interval = 0; }) ==
          "--metrics-interval: 0 seconds is out of range (1 to 86400)");
    CHECK(err([](RunOptions& o) { o.metrics = "m"; o.metrics_interval = 86401; }) ==
          "--metrics-interval: 86401 seconds is out of range (1 to 86400)");
    CHECK(err([](RunOptions& o) { o.metrics_interval = 1; }) ==
          "--metrics-interval: there is no metrics file to write (use --metrics PATH or metrics = \"PATH\")");
    CHECK(run_error(d.vm_toml("metrics_interval = 10\n")) ==
          f + ":2: key \"metrics_interval\": there is no metrics file to write (use --metrics PATH or metrics = "
              "\"PATH\")");
    CHECK(run_error(d.vm_toml("metrics = \"m\"\nmetrics_interval = -1\n")) ==
          f + ":3: key \"metrics_interval\": -1 seconds is out of range (1 to 86400)");

    SECTION("a metrics file that cannot be written") {
        // Refusals that hold for root too (CI): no such directory, a
        // directory, a path through a regular file.
        const std::string missing = (d.dir / "no-such-dir" / "vm.metrics").string();
        CHECK(err([&](RunOptions& o) { o.metrics = missing; }) ==
              "--metrics: \"" + missing + "\" cannot be created: there is no directory \"" +
                  (d.dir / "no-such-dir").string() + "\"");
        CHECK(err([&](RunOptions& o) { o.metrics = d.dir.string(); }) ==
              "--metrics: \"" + d.dir.string() + "\" cannot be written: it is a directory");
        const std::string through = (d.kernel / "m").string();
        CHECK(err([&](RunOptions& o) { o.metrics = through; }) ==
              "--metrics: \"" + through + "\" cannot be created: there is no directory \"" + d.kernel.string() + "\"");
        CHECK(run_error(d.vm_toml("metrics = \"no-such-dir/vm.metrics\"\n")) ==
              f + ":2: key \"metrics\": \"" + missing + "\" cannot be created: there is no directory \"" +
                  (d.dir / "no-such-dir").string() + "\"");
        CHECK(err([&](RunOptions& o) { o.metrics = ""; }) == "--metrics: the path is empty");
        // An existing file is appended to; a new one in a directory we may write is fine.
        const std::string existing = d.write("old.metrics", "{}\n").string();
        CHECK(err([&](RunOptions& o) { o.metrics = existing; }) == "(no error)");
        if (::geteuid() != 0) {
            ::chmod(existing.c_str(), 0444);
            CHECK(err([&](RunOptions& o) { o.metrics = existing; }) ==
                  "--metrics: \"" + existing + "\" cannot be written: Permission denied");
        }
    }
}

TEST_CASE("api_socket: the key and the flag", "[config][api]") {
    ConfigDir d;
    auto file = [&](const std::string& rest) {
        RunOptions opts;
        opts.config = d.vm_toml(rest);
        return resolve_run_config(opts);
    };
    CHECK(file("").api_socket.empty());  // the default socket next to the broker's
    CHECK(file("api_socket = \"none\"\n").api_socket == "none");
    CHECK(file("api_socket = \"vm.sock\"\n").api_socket == (d.dir / "vm.sock").string());  // relative to the file

    RunOptions o;
    o.config = d.vm_toml("api_socket = \"none\"\n");
    o.api_socket = "/tmp/flag.sock";  // the flag overrides the file
    CHECK(resolve_run_config(o).api_socket == "/tmp/flag.sock");

    const std::string f = (d.dir / "vm.toml").string();
    CHECK(run_error(d.vm_toml("api_socket = 1\n")) == f + ":2: key \"api_socket\": expected a string, got the integer 1");
    CHECK_THAT(run_error(d.vm_toml("api_socket = \"/" + std::string(200, 'a') + "\"\n")),
               Catch::Contains("longer than a Unix socket path can be (107)"));
    CHECK_THAT(flag_error(d, [](RunOptions& r) { r.api_socket = ""; }),
               Catch::StartsWith("--api-socket: an empty path"));
}
