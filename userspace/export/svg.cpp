// Flame graph SVG, plain and differential. The layout follows flamegraph.pl: root "all" at
// the bottom, children above their parent in frame order, width proportional to value.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <ostream>

#include <fmt/format.h>

#include "ctbpf/export.h"
#include "internal.h"
#include "svg_script.h"

namespace ctbpf {
namespace {

constexpr double kXPad = 10;       // left and right margin, px
constexpr double kFontSize = 12;   // matches the style sheet
constexpr double kCharWidth = 0.59 * kFontSize;  // Verdana's average glyph width

struct Tree {
    double size = 0;   // what the width follows
    double after = 0;  // differential: incident value
    double before = 0; // differential: scaled baseline value
    std::map<std::string, std::unique_ptr<Tree>> kids;

    Tree& kid(const std::string& name) {
        auto& k = kids[name];
        if (!k) k = std::make_unique<Tree>();
        return *k;
    }
};

std::string escape(std::string_view s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&apos;"; break;
            default:
                // XML 1.0 forbids most control characters even when escaped.
                if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') out += c;
        }
    }
    return out;
}

std::string with_commas(double v) {
    const auto digits = fmt::format("{:.0f}", std::abs(v));
    std::string out = v <= -0.5 ? "-" : "";
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

// The label shown inside a frame; the script applies the same rule after a zoom.
std::string fit(std::string_view name, double width) {
    const auto max = static_cast<long>(std::floor((width - 6) / kCharWidth));
    if (max < 3) return "";
    if (long(name.size()) <= max) return std::string(name);
    return std::string(name.substr(0, size_t(max - 2))) + "..";
}

// Warm colours (flamegraph.pl's "hot"), stable per name: the same host has the same
// colour in every graph.
std::string hot_colour(std::string_view name) {
    uint64_t h = 1469598103934665603ull;
    for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    const auto part = [&](int shift) { return double((h >> shift) & 0xffff) / 65535.0; };
    return fmt::format("rgb({},{},{})", 205 + int(50 * part(0)), int(230 * part(16)),
                       int(55 * part(32)));
}

// Red grew, blue shrank, near-white unchanged; saturation follows the relative change
// (after - before) / max(after, before), so a new frame is full red.
std::string diff_colour(double before, double after) {
    const double top = std::max(before, after);
    const double rel = top > 0 ? (after - before) / top : 0;
    const int fade = int(std::lround(250 - 190 * std::abs(rel)));  // 250 .. 60
    return rel >= 0 ? fmt::format("rgb(255,{0},{0})", fade) : fmt::format("rgb({0},{0},255)", fade);
}

struct Canvas {
    const SvgOptions& opts;
    bool diff = false;
    double total = 0;  // root size
    double scale = 0;  // px per unit of size
    double height = 0, frames_bottom = 0;
};

void emit_frame(std::ostream& os, const Canvas& c, const std::string& name, const Tree& t,
                unsigned depth, double start) {
    const double x = kXPad + start * c.scale, w = t.size * c.scale;
    const double y = c.frames_bottom - (depth + 1.0) * c.opts.frame_height;
    const double pct = 100 * t.size / c.total;
    std::string tip, fill;
    if (!c.diff) {
        tip = fmt::format("{} ({} {}, {:.2f}%)", name, with_commas(t.size), c.opts.metric, pct);
        fill = hot_colour(name);
    } else {
        const std::string change = t.before <= 0  ? "new"
                                   : t.after <= 0 ? "gone"
                                                  : fmt::format("{:+.1f}%", 100 * (t.after - t.before) / t.before);
        tip = fmt::format("{} ({} {}, baseline {}, {}; {:.2f}% of graph)", name, with_commas(t.after),
                          c.opts.metric, with_commas(t.before), change, pct);
        fill = diff_colour(t.before, t.after);
    }
    os << fmt::format(
        "<g data-n=\"{}\" data-v=\"{}\" data-d=\"{}\"><title>{}</title>"
        "<rect x=\"{:.2f}\" y=\"{:.1f}\" width=\"{:.2f}\" height=\"{}\" fill=\"{}\" rx=\"2\" ry=\"2\"/>"
        "<text x=\"{:.2f}\" y=\"{:.1f}\">{}</text></g>\n",
        escape(name), t.size, depth, escape(tip), x, y, w, c.opts.frame_height - 1, fill, x + 3,
        y + c.opts.frame_height / 2.0 + 4, escape(fit(name, w)));

    for (const auto& [kid_name, kid] : t.kids) {
        // Narrower than min_width: invisible, and so is everything above it.
        if (kid->size > 0 && kid->size * c.scale >= c.opts.min_width)
            emit_frame(os, c, kid_name, *kid, depth + 1, start);
        start += kid->size;
    }
}

unsigned visible_depth(const Tree& t, double scale, double min_width) {
    unsigned d = 0;
    for (const auto& [_, kid] : t.kids)
        if (kid->size > 0 && kid->size * scale >= min_width)
            d = std::max(d, 1 + visible_depth(*kid, scale, min_width));
    return d;
}

void render(std::ostream& os, const Tree& root, bool diff, const SvgOptions& opts,
            const std::string& subtitle) {
    const double width = std::max(opts.width, 100u);
    Canvas c{opts, diff, root.size, 0, 0, 0};
    c.scale = root.size > 0 ? (width - 2 * kXPad) / root.size : 0;
    const double top = kFontSize * 3 + (subtitle.empty() ? 0 : kFontSize * 2);
    const double bottom = kFontSize * 2 + 10;
    const unsigned levels = root.size > 0 ? 1 + visible_depth(root, c.scale, opts.min_width) : 1;
    c.height = top + levels * opts.frame_height + bottom;
    c.frames_bottom = c.height - bottom;

    os << fmt::format(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n"
        "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" "
        "viewBox=\"0 0 {0} {1}\" data-xpad=\"{2}\" data-full=\"{3:.2f}\" data-char=\"{4:.2f}\">\n"
        "<!-- Flame graph by ctbpf: click a frame to zoom, Search or Ctrl-F to highlight. -->\n"
        "<defs><linearGradient id=\"background\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">"
        "<stop stop-color=\"#eeeeee\" offset=\"5%\"/><stop stop-color=\"#eeeeb0\" offset=\"95%\"/>"
        "</linearGradient></defs>\n",
        width, c.height, kXPad, width - 2 * kXPad, kCharWidth);
    os << "<style>" << export_detail::kSvgStyle << "</style>\n";
    os << "<script><![CDATA[" << export_detail::kSvgScript << "]]></script>\n";
    os << fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"url(#background)\"/>\n",
                      width, c.height);
    os << fmt::format("<text id=\"title\" x=\"{}\" y=\"24\">{}</text>\n", width / 2, escape(opts.title));
    if (!subtitle.empty())
        os << fmt::format("<text id=\"subtitle\" x=\"{}\" y=\"{}\">{}</text>\n", width / 2,
                          24 + kFontSize * 1.75, escape(subtitle));
    os << fmt::format(
        "<text id=\"unzoom\" class=\"button hide\" x=\"{0}\" y=\"24\">Reset Zoom</text>\n"
        "<text id=\"search\" class=\"button\" x=\"{1}\" y=\"24\">Search</text>\n"
        "<text id=\"details\" x=\"{0}\" y=\"{2}\"> </text>\n"
        "<text id=\"matched\" class=\"hide\" x=\"{1}\" y=\"{2}\"> </text>\n",
        kXPad, width - kXPad, c.height - 17);
    os << "<g id=\"frames\">\n";
    if (root.size > 0) emit_frame(os, c, "all", root, 0, 0);
    else os << fmt::format("<text x=\"{}\" y=\"{}\">no data</text>\n", kXPad, c.frames_bottom - 4);
    os << "</g>\n</svg>\n";
}

}  // namespace

void StackAggregator::write_svg(std::ostream& os, const SvgOptions& opts) const {
    Tree root;
    for (const auto& s : stacks()) {
        Tree* t = &root;
        t->size += double(s.value);
        for (const auto& f : s.frames) (t = &t->kid(f))->size += double(s.value);
    }
    render(os, root, false, opts, opts.subtitle);
}

void write_svg_diff(std::ostream& os, const StackAggregator& baseline,
                    const StackAggregator& incident, const SvgOptions& opts,
                    const DiffOptions& diff) {
    const double scale = diff_scale(baseline, incident, diff);
    Tree root;
    for (const auto& d : export_detail::diff_stacks(baseline, incident, scale)) {
        Tree* t = &root;
        for (size_t i = 0;; ++i) {
            t->after += double(d.after);
            t->before += d.before;
            t->size += diff.negate ? d.before : double(d.after);
            if (i == d.frames.size()) break;
            t = &t->kid(d.frames[i]);
        }
    }
    std::string subtitle = opts.subtitle;
    if (subtitle.empty()) {
        subtitle = fmt::format("{}; red grew, blue shrank against the baseline ×{:.3g}",
                               diff.negate ? "Sized by baseline" : "Sized by incident", scale);
    }
    render(os, root, true, opts, subtitle);
}

}  // namespace ctbpf
