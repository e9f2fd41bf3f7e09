#include "watch_tui.h"

#include <curses.h>

#include <algorithm>
#include <clocale>

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

void Tui::draw(const LiveSnapshot& s, const ModelOptions& opt, bool paused) {
    erase();
    const TableRow& t = s.tables.front();
    const int lvl = s.level == Level::Critical ? COLOR_PAIR(kCrit) | A_BOLD
                    : s.level == Level::Warning ? COLOR_PAIR(kWarn) | A_BOLD
                                                : COLOR_PAIR(kNormal);
    int y = 0;
    std::string ns;
    for (const auto& r : s.tables) ns += fmt::format("{}{}", ns.empty() ? "" : ",", r.name);
    line(y++, A_BOLD, fmt::format("ctbpf watch   backend {}   netns {}   {:.0f}s{}", s.backend, ns, s.elapsed_s,
                                  paused ? "   [PAUSED]" : ""));
    line(y++, lvl, fmt::format("table  {} / {}  ({:.1f}% full)   buckets {}   memory {} (at max {}){}", t.count, t.max,
                               t.fill() * 100, t.buckets, human_bytes(s.mem_now), human_bytes(s.mem_max),
                               s.object_size_estimated ? " est." : ""));
    line(y++, COLOR_PAIR(kNormal),
         fmt::format("inserts/s {:>8.0f}   destroys/s {:>8.0f}   growth/s {:>+8.0f}   full {}", s.inserts_s,
                     s.destroys_s, s.growth_s,
                     s.seconds_to_full ? (*s.seconds_to_full <= 0 ? std::string("NOW")
                                                                  : "in " + human_seconds(static_cast<uint64_t>(*s.seconds_to_full)))
                                       : std::string("not at this rate")));
    line(y++, s.drops_s > 0 ? COLOR_PAIR(kCrit) | A_BOLD : COLOR_PAIR(kNormal),
         fmt::format("drops/s {:>8.0f} (table full {:.0f})   early drops/s {:>6.0f}   insert failures/s {:.0f}",
                     s.drops_s, s.drops_full_s, s.early_drops_s, s.insert_failed_s));
    line(y++, s.totals.lost > 0 ? COLOR_PAIR(kCrit) | A_BOLD : COLOR_PAIR(kDim),
         fmt::format("events lost {}   occupancy {}", s.totals.lost,
                     s.baseline ? fmt::format("includes {} entries from before start", s.baseline_entries)
                                : std::string("counts entries created since start")));
    for (size_t i = 0; i < s.alerts.size() && i < 4; ++i)
        line(y++, (i == 0 ? COLOR_PAIR(kCrit) : COLOR_PAIR(kWarn)) | A_BOLD, "! " + s.alerts[i]);
    y++;

    line(y++, COLOR_PAIR(kHeader),
         fmt::format("{:<39} {:>9} {:>9} {:>9} {:>8} {:>6}  {}", "SOURCE", "INS/S", "INS/S 10s", "ENTRIES", "DROPS",
                     "SHARE", "LAST 60s"));
    const int dest_rows = std::min<int>(static_cast<int>(s.destinations.size()), 5);
    const int room = std::max(1, LINES - y - (dest_rows ? dest_rows + 3 : 2));
    scroll_ = std::min(scroll_, std::max(0, static_cast<int>(s.sources.size()) - 1));
    for (int i = scroll_; i < static_cast<int>(s.sources.size()) && i - scroll_ < room; ++i) {
        const auto& r = s.sources[static_cast<size_t>(i)];
        line(y++, COLOR_PAIR(kNormal),
             fmt::format("{:<39} {:>9.0f} {:>9.1f} {:>9} {:>8} {:>5.1f}%  {}", r.addr.to_string(), r.rate_1s,
                         r.rate_10s, r.entries, r.drops, r.share * 100, sparkline(r.trend, 20)));
    }
    if (dest_rows) {
        y++;
        line(y++, COLOR_PAIR(kHeader), fmt::format("{:<39} {:>6} {:>6} {:>9}", "WHO LOSES PACKETS", "PORT", "PROTO", "DROPS"));
        for (int i = 0; i < dest_rows; ++i) {
            const auto& d = s.destinations[static_cast<size_t>(i)];
            line(y++, COLOR_PAIR(kCrit),
                 fmt::format("{:<39} {:>6} {:>6} {:>9}", d.addr.to_string(), d.port, proto_name(d.proto), d.drops));
        }
    }
    const std::string help =
        editing_ ? "filter (address or CIDR, Enter to apply, Esc to cancel): " + input_
                 : fmt::format("sort: {} (r/e/d/s)  /: filter{}  p: pause  arrows: scroll  q: quit  {}",
                               sort_name(opt.sort), opt.cidr ? " [" + opt.cidr->to_string() + "]" : "", message_);
    line(LINES - 1, A_REVERSE, help);
    refresh();
}

}  // namespace ctbpf::cli
