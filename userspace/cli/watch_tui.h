// The full-screen view (ncurses): draws a LiveSnapshot and handles keys. Used only when
// standard output is a terminal and neither --json nor --once was asked.
#pragma once

#include <string>

#include "ctbpf/live_view.h"

namespace ctbpf::cli {

class Tui {
public:
    Tui();
    ~Tui();
    Tui(const Tui&) = delete;
    Tui& operator=(const Tui&) = delete;

    // Reads pending keys. Returns false when the user quits. Sets `changed` when the view
    // options changed (sort, filter) so the caller can rebuild the rows at once.
    bool keys(ModelOptions& opt, bool& paused, bool& changed);
    void draw(const LiveSnapshot& s, const ModelOptions& opt, bool paused);

private:
    int scroll_ = 0;
    bool editing_ = false;
    bool composition_ = false;  // 'c': what the entries are instead of the sources
    bool workloads_ = false;    // 'w': the top namespaces, cgroups and processes instead
    std::string input_, message_;
};

}  // namespace ctbpf::cli
