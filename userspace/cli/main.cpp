// ctbpf: parses the command line (defined in cli.cpp) and hands over to one command. Errors
// end here as one line on stderr and a non-zero exit.
#include <fmt/format.h>

#include "cli.h"
#include "ctbpf/error.h"

int main(int argc, char** argv) {
    using namespace ctbpf::cli;
    const auto cl = make_command_line();
    CLI::App& app = cl->app;

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // One line, not CLI11's multi-line block.
        std::string msg = e.what();
        // CLI11 calls an unknown command "A subcommand is required": name it instead.
        for (int i = 1; i < argc; ++i) {
            const std::string_view arg = argv[i];
            if (arg.empty() || arg[0] == '-') continue;
            bool known = false;
            for (const auto* sub : app.get_subcommands({})) known = known || sub->get_name() == arg;
            if (!known) {
                std::string names;
                for (const auto* sub : app.get_subcommands({})) names += (names.empty() ? "" : ", ") + sub->get_name();
                msg = fmt::format("unknown command '{}': use one of {}", arg, names);
            }
            break;
        }
        fmt::print(stderr, "ctbpf: {} (see ctbpf --help)\n", msg);
        // `status` follows the monitoring-plugin convention: 2 means critical there, so a
        // usage error is 3 (unknown). Every other command exits 2 on bad usage.
        return cl->status->parsed() ? 3 : 2;
    }

    try {
        if (*cl->events) return cmd_events(cl->events_args);
        if (*cl->probe) return cmd_probe(cl->probe_json);
        if (*cl->status) return cmd_status(cl->status_args);
        if (*cl->watch) return cmd_watch(cl->watch_args);
        if (*cl->record) return cmd_record(cl->record_args);
        if (*cl->report) return cmd_report(cl->report_args);
        if (*cl->exp) return cmd_export(cl->export_args);
        if (*cl->serve) return cmd_serve(cl->serve_args);
    } catch (const ctbpf::Error& e) {
        fmt::print(stderr, "ctbpf: {}\n", e.what());
        return e.exit_code();
    } catch (const std::exception& e) {
        fmt::print(stderr, "ctbpf: unexpected error: {}\n", e.what());
        return 1;
    }
    return 0;
}
