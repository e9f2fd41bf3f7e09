#include "watch_tui.h"

#include "format.h"

#include <curses.h>

#include <algorithm>
#include <sstream>
#include <clocale>
#include <tuple>

#include <fmt/format.h>

namespace ctbpf::cli {

namespace {
enum Pair { kNormal = 1, kHeader, kWarn, kCrit, kDim };

void line(int y, int attr, const std::string& text) {
    if (y >= LINES) return;
    attron(attr);
    mvaddnstr(y, 0, text.c_str(), COLS);
    attroff(attr);
    clrtoeol();
}

std::string sort_name(SourceSort s) {
    return s == SourceSort::Rate ? "rate" : s == SourceSort::Entries ? "entries" : "drops";
}
}  // namespace

Tui::Tui() {
    std::setlocale(LC_ALL, "");  // for the trend's block characters
    initscr();
    cbreak();
    noecho();
    nodelay(stdscr, TRUE);
    keypad(stdscr, TRUE);
    curs_set(0);
    if (has_colors()) {
        start_color();
        use_default_colors();
        init_pair(kNormal, -1, -1);
        init_pair(kHeader, COLOR_BLACK, COLOR_CYAN);
        init_pair(kWarn, COLOR_YELLOW, -1);
        init_pair(kCrit, COLOR_RED, -1);
        init_pair(kDim, COLOR_BLUE, -1);
    }
}

Tui::~Tui() { endwin(); }

bool Tui::keys(ModelOptions& opt, bool& paused, bool& changed) {
    for (int ch; (ch = getch()) != ERR;) {
        if (editing_) {
            if (ch == '\n' || ch == KEY_ENTER) {
                editing_ = false;
                if (input_.empty()) {
                    opt.cidr.reset();
                    message_.clear();
                } else if (auto c = Cidr::parse(input_)) {
                    opt.cidr = *c;
                    message_ = "filter: " + c->to_string();
                } else {
                    message_ = "not an address or CIDR: " + input_;
                }
                changed = true;
            } else if (ch == 27) {
                editing_ = false;
            } else if (ch == KEY_BACKSPACE || ch == 127 || ch == 8) {
                if (!input_.empty()) input_.pop_back();
            } else if (ch >= 32 && ch < 127) {
                input_ += static_cast<char>(ch);
            }
            changed = true;
            continue;
        }
        switch (ch) {
            case 'q': case 'Q': return false;
            case 'p': case 'P': paused = !paused; changed = true; break;
            case 'r': opt.sort = SourceSort::Rate; changed = true; break;
            case 'e': opt.sort = SourceSort::Entries; changed = true; break;
            case 'd': opt.sort = SourceSort::Drops; changed = true; break;
            case 's':
                opt.sort = opt.sort == SourceSort::Rate ? SourceSort::Entries
                           : opt.sort == SourceSort::Entries ? SourceSort::Drops : SourceSort::Rate;
                changed = true;
                break;
            case '/': editing_ = true; input_.clear(); changed = true; break;
            case 'c': case 'C': composition_ = !composition_; workloads_ = false; scroll_ = 0; changed = true; break;
            case 'w': case 'W': workloads_ = !workloads_; composition_ = false; scroll_ = 0; changed = true; break;
            case 27: opt.cidr.reset(); message_.clear(); changed = true; break;
            case KEY_DOWN: scroll_++; changed = true; break;
            case KEY_UP: scroll_ = std::max(0, scroll_ - 1); changed = true; break;
            case KEY_NPAGE: scroll_ += 10; changed = true; break;
            case KEY_PPAGE: scroll_ = std::max(0, scroll_ - 10); changed = true; break;
            case KEY_RESIZE: changed = true; break;
            default: break;
        }
    }
    return true;
}

namespace {

// Drops by destination, a run of consecutive ports of one address and protocol on one row
// ("127.0.0.1:5353-5359"): a flood spread over a port range takes one row, so a victim on
// a port of its own (a health check on :3908) is not pushed off the screen by it.
struct VictimRow {
    std::string where;
    std::string proto;
    uint64_t drops = 0;
};

std::vector<VictimRow> victims(std::vector<DestRow> dests) {
    std::sort(dests.begin(), dests.end(), [](const DestRow& a, const DestRow& b) {
        return std::tie(a.addr.bytes, a.proto, a.port) < std::tie(b.addr.bytes, b.proto, b.port);
    });
    std::vector<VictimRow> out;
    for (size_t i = 0; i < dests.size();) {
        size_t j = i;
        uint64_t drops = dests[i].drops;
        while (j + 1 < dests.size() && dests[j + 1].addr == dests[i].addr && dests[j + 1].proto == dests[i].proto &&
               dests[j + 1].port == dests[j].port + 1)
            drops += dests[++j].drops;
        const std::string addr = dests[i].addr.to_string();
        out.push_back({j == i ? fmt::format("{}:{}", addr, dests[i].port)
                              : fmt::format("{}:{}-{}", addr, dests[i].port, dests[j].port),
                       proto_name(dests[i].proto), drops});
        i = j + 1;
    }
    std::stable_sort(out.begin(), out.end(), [](const VictimRow& a, const VictimRow& b) { return a.drops > b.drops; });
    return out;
}

// Splits `text` into lines of at most `width` columns at spaces; continuation lines are
// indented by two.
std::vector<std::string> wrap_words(const std::string& text, size_t width) {
    std::vector<std::string> out;
    std::string cur;
    size_t i = 0;
    while (i < text.size()) {
        size_t e = text.find(' ', i);
        if (e == std::string::npos) e = text.size();
        const std::string word = text.substr(i, e - i);
        if (!cur.empty() && cur.size() + 1 + word.size() > width) {
            out.push_back(cur);
            cur = "  ";
        }
        cur += (cur.empty() || cur == "  " ? "" : " ") + word;
        i = e + 1;
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

}  // namespace

void Tui::draw(const LiveSnapshot& s, const ModelOptions& opt, bool paused) {
    erase();
    const TableRow& t = s.tables.front();
    const size_t cols = static_cast<size_t>(std::max(40, COLS));
    const int lvl = s.level == Level::Critical ? COLOR_PAIR(kCrit) | A_BOLD
                    : s.level == Level::Warning ? COLOR_PAIR(kWarn) | A_BOLD
                                                : COLOR_PAIR(kNormal);
    int y = 0;
    std::string ns;
    for (const auto& r : s.tables) ns += fmt::format("{}{}", ns.empty() ? "" : ",", r.name);
    line(y++, A_BOLD, fmt::format("ctbpf watch  [{}]  {}  netns {}  {:.0f}s{}", level_name(s.level), s.backend, ns,
                                  s.elapsed_s, paused ? "  [PAUSED]" : ""));
    line(y++, lvl, fmt::format("table  {} / {}  ({:.1f}% full)  buckets {}  memory {} (max {}){}", t.count, t.max,
                               t.fill() * 100, t.buckets, human_bytes(s.mem_now), human_bytes(s.mem_max),
                               s.object_size_estimated ? " est." : ""));
    line(y++, COLOR_PAIR(kNormal),
         fmt::format("inserts/s {:.0f}  destroys/s {:.0f}  growth/s {:+.0f}  full {}", s.inserts_s, s.destroys_s,
                     s.growth_s,
                     s.seconds_to_full ? (*s.seconds_to_full <= 0 ? std::string("NOW")
                                                                  : "in " + human_seconds(static_cast<uint64_t>(*s.seconds_to_full)))
                                       : std::string("not at this rate")));
    line(y++, s.drops_s > 0 ? COLOR_PAIR(kCrit) | A_BOLD : COLOR_PAIR(kNormal),
         fmt::format("drops/s {:.0f} (table full {:.0f})  early drops/s {:.0f}  insert failures/s {:.0f}", s.drops_s,
                     s.drops_full_s, s.early_drops_s, s.insert_failed_s));
    line(y++, s.totals.lost > 0 || s.totals.overflow > 0 ? COLOR_PAIR(kCrit) | A_BOLD : COLOR_PAIR(kDim),
         fmt::format("events lost {}{}  occupancy {}", s.totals.lost,
                     s.totals.overflow ? fmt::format(" (+{} nested calls untracked)", s.totals.overflow) : std::string(),
                     s.baseline ? fmt::format("includes {} entries from before start", s.baseline_entries)
                                : std::string("counts entries created since start")));

    // Alerts wrap instead of being cut (the advice's commands must be readable at 80
    // columns); at most a third of the screen, the most important first.
    const int alert_room = std::max(2, LINES / 3);
    int alert_lines = 0;
    for (size_t i = 0; i < s.alerts.size() && alert_lines < alert_room; ++i)
        for (const auto& l : wrap_words("! " + s.alerts[i], cols)) {
            if (alert_lines >= alert_room) break;
            line(y++, (i == 0 ? COLOR_PAIR(kCrit) : COLOR_PAIR(kWarn)) | A_BOLD, l);
            alert_lines++;
        }

    if (workloads_) {
        // Which workload: the top namespaces, cgroups and processes (--all-netns).
        std::istringstream in(workloads_text(s, static_cast<size_t>(std::max(3, (LINES - y) / 3 - 1))));
        int skip = scroll_;
        bool any = false;
        for (std::string l; std::getline(in, l) && y < LINES - 1;) {
            any = true;
            if (skip > 0) {
                --skip;
                continue;
            }
            const bool head = l.rfind("NETWORK", 0) == 0 || l.rfind("CGROUP", 0) == 0 || l.rfind("PROCESS", 0) == 0;
            line(y++, head ? COLOR_PAIR(kHeader) : COLOR_PAIR(kNormal), l);
        }
        if (!any) line(y++, COLOR_PAIR(kNormal), "(no inserts or drops seen yet)");
        line(LINES - 1, A_REVERSE, "w: back to sources  arrows scroll  p pause  q quit");
        refresh();
        return;
    }
    if (composition_) {
        // What the entries are instead of who makes them: each table's last dump, then
        // lifetimes of ended entries (the same rows as the text view).
        std::string text;
        for (const auto& c : s.composition) {
            text += fmt::format("\nWHAT THE ENTRIES ARE  netns {}  (dump of {:.3f} s)\n", c.netns, c.dump_seconds);
            text += composition_text(c, s.object_size, 10);
        }
        if (s.composition.empty()) text += "\n(no dump of the table yet: every --composition-interval)\n";
        for (const auto& e : s.composition_errors) text += e + "\n";
        if (!s.lifetimes.empty()) text += "\nLIFETIMES OF ENDED ENTRIES\n" + lifetimes_text(s.lifetimes);
        std::istringstream in(text);
        int skip = scroll_;
        for (std::string l; std::getline(in, l) && y < LINES - 1;) {
            if (skip > 0 && !l.empty()) {
                --skip;
                continue;
            }
            const bool head = l.rfind("WHAT", 0) == 0 || l.rfind("LIFETIMES", 0) == 0 || l.rfind("  CLASS", 0) == 0 ||
                              l.rfind("  ENDED", 0) == 0;
            line(y++, head ? COLOR_PAIR(kHeader) : COLOR_PAIR(kNormal), l);
        }
        line(LINES - 1, A_REVERSE, "c: back to sources  arrows scroll  p pause  q quit");
        refresh();
        return;
    }
    // Columns sized to the addresses shown, so 80 columns hold every figure; the trend
    // takes whatever width is left.
    // With several namespaces an address is not a source by itself: name the namespace.
    const bool many = s.tables.size() > 1;
    auto where = [&](const Address& a, const std::string& ns) {
        return many ? fmt::format("{} [{}]", a.to_string(), ns) : a.to_string();
    };
    size_t aw = 15;
    for (const auto& r : s.sources) aw = std::max(aw, where(r.addr, r.netns_name).size());
    const auto vrows = victims(s.destinations);
    for (const auto& v : vrows) aw = std::max(aw, v.where.size());
    aw = std::min<size_t>(aw, 39);
    const size_t fixed = aw + 1 + 8 + 1 + 8 + 1 + 8 + 1 + 8 + 1 + 6;
    const size_t trend = cols > fixed + 12 ? std::min<size_t>(60, cols - fixed - 2) : 0;

    // Rows left (one for the help line, one blank before each table): victims get what
    // they need up to half, sources the rest, so a victim stays visible in a flood.
    const int left = std::max(2, LINES - 1 - y - 1);
    const int want_victims = vrows.empty() ? 0 : static_cast<int>(vrows.size()) + 2;
    const int victim_rows = std::min(want_victims, std::max(vrows.empty() ? 0 : 3, left / 2));
    const int source_rows = std::max(1, left - victim_rows - 1);

    y++;
    line(y++, COLOR_PAIR(kHeader),
         fmt::format("{:<{}} {:>8} {:>8} {:>8} {:>8} {:>6}{}", "SOURCE", aw, "INS/S", "INS/S10", "ENTRIES", "DROPS",
                     "SHARE", trend ? "  LAST 60s" : ""));
    scroll_ = std::min(scroll_, std::max(0, static_cast<int>(s.sources.size()) - 1));
    for (int i = scroll_; i < static_cast<int>(s.sources.size()) && i - scroll_ < source_rows; ++i) {
        const auto& r = s.sources[static_cast<size_t>(i)];
        line(y++, COLOR_PAIR(kNormal),
             fmt::format("{:<{}} {:>8.0f} {:>8.1f} {:>8} {:>8} {:>5.1f}%{}", where(r.addr, r.netns_name), aw, r.rate_1s,
                         r.rate_10s, r.entries, r.drops, r.share * 100,
                         trend ? "  " + sparkline(r.trend, trend) : std::string()));
    }
    // What no source accounts for (docs/watch.md, tracking.unattributed): shown, so the
    // ENTRIES column visibly adds up to the table.
    if (s.other_entries != 0 && y < LINES - 2)
        line(y++, COLOR_PAIR(kDim), fmt::format("{:<{}} {:>8} {:>8} {:>8}", "(other sources)", aw, "", "",
                                                s.other_entries));
    if (s.unattributed != 0 && y < LINES - 2)
        line(y++, COLOR_PAIR(kDim), fmt::format("{:<{}} {:>8} {:>8} {:>8}", "(unattributed)", aw, "", "", s.unattributed));
    if (victim_rows > 0) {
        y++;
        line(y++, COLOR_PAIR(kHeader), fmt::format("{:<{}} {:>8} {:>8}", "WHO LOSES PACKETS", aw, "PROTO", "DROPS"));
        for (int i = 0; i < victim_rows - 2 && i < static_cast<int>(vrows.size()); ++i) {
            const auto& v = vrows[static_cast<size_t>(i)];
            line(y++, COLOR_PAIR(kCrit), fmt::format("{:<{}} {:>8} {:>8}", v.where, aw, v.proto, v.drops));
        }
    }
    const std::string help =
        editing_ ? "filter (address or CIDR, Enter to apply, Esc to cancel): " + input_
                 : fmt::format("sort {} (r/e/d/s)  / filter{}  c entries by state  w workloads  p pause  arrows scroll  q quit  {}",
                               sort_name(opt.sort), opt.cidr ? " [" + opt.cidr->to_string() + "]" : "", message_);
    line(LINES - 1, A_REVERSE, help);
    refresh();
}

}  // namespace ctbpf::cli
