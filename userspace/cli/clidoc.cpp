// ctbpf-clidoc: run by the build (not installed) to write the man page and the bash and zsh
// completions from make_command_line(), the same definition the binary parses with, so a
// new option or value shows up in all three without anyone remembering to add it.
//   ctbpf-clidoc --man OUT --bash OUT --zsh OUT [--date YYYY-MM-DD] [--docdir DIR] [--unitdir DIR]
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "cli.h"

namespace {

using ctbpf::cli::CommandLine;
using ctbpf::cli::ValueKind;

struct Settings {
    std::string man, bash, zsh, date, docdir = "/usr/local/share/doc/ctbpf",
                                    unitdir = "/usr/local/lib/systemd/system";
};

bool is_flag(const CLI::Option* opt) { return opt->get_expected_max() == 0; }
bool is_repeatable(const CLI::Option* opt) { return !is_flag(opt) && opt->get_items_expected_max() > 1; }

std::vector<const CLI::App*> commands(const CLI::App& app) { return app.get_subcommands({}); }

std::vector<const CLI::Option*> named_options(const CLI::App& app) {
    return app.get_options([](const CLI::Option* o) { return o->nonpositional(); });
}
std::vector<const CLI::Option*> positionals(const CLI::App& app) {
    return app.get_options([](const CLI::Option* o) { return !o->nonpositional(); });
}

// Every spelling the parser takes for an option, dashes included: "-o", "--output".
std::vector<std::string> spellings(const CLI::Option* opt) {
    std::vector<std::string> out;
    for (const auto& s : opt->get_snames()) out.push_back("-" + s);
    for (const auto& l : opt->get_lnames()) out.push_back("--" + l);
    return out;
}

std::string upper(std::string s) {
    for (char& c : s) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    return s;
}

// The placeholder for an option's value in the synopsis and the man page.
std::string metavar(const CommandLine& cl, const CLI::Option* opt) {
    switch (cl.kind_of(opt)) {
        case ValueKind::file: return "FILE";
        case ValueKind::netns: return "NAME";
        case ValueKind::choice: {
            std::string s;
            for (const auto& v : cl.choices.at(opt)) s += (s.empty() ? "" : "|") + v;
            return s;
        }
        case ValueKind::other: break;
    }
    const auto& l = opt->get_lnames();
    return upper(l.empty() ? opt->get_name() : l.front());
}

// What CLI11 checks beyond the type ("INT in [1 - 100000]", "POSITIVE"); "" if nothing.
std::string constraint(const CommandLine& cl, const CLI::Option* opt) {
    if (cl.kind_of(opt) == ValueKind::choice) return "";
    const std::string t = opt->get_type_name();
    const auto colon = t.find(':');
    return colon == std::string::npos ? "" : t.substr(colon + 1);
}

// ---- troff -------------------------------------------------------------------------------

// A dash that starts a word is an option's (or a minus), typed as \- so that it is not
// turned into a typographic hyphen and can be searched for; a dash inside a word (per-source)
// stays a hyphen.
std::string roff(std::string_view text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\\') {
            out += "\\e";
        } else if (c == '-') {
            const bool word_start = i == 0 || text[i - 1] == ' ' || text[i - 1] == '(' || text[i - 1] == '-' ||
                                    text[i - 1] == '[' || text[i - 1] == '/';
            out += word_start ? "\\-" : "-";
        } else {
            out += c;
        }
    }
    // A line starting with . or ' would be read as a request.
    if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
    return out;
}

std::string roff_option_head(const CommandLine& cl, const CLI::Option* opt) {
    std::string head;
    for (const auto& s : spellings(opt)) head += (head.empty() ? "" : ", ") + fmt::format("\\fB{}\\fR", roff(s));
    if (!is_flag(opt)) head += fmt::format(" \\fI{}\\fR", roff(metavar(cl, opt)));
    return head;
}

// CLI11's help texts are fragments ("seconds between refreshes"); the page has sentences.
std::string sentence(std::string text) {
    if (text.empty()) return text;
    if (text[0] >= 'a' && text[0] <= 'z') text[0] = static_cast<char>(text[0] - 'a' + 'A');
    if (text.back() != '.') text += '.';
    return text;
}

// CLI11's own words for a check, as a sentence: "INT in [1 - 100000]" reads "From 1 to 100000."
std::string constraint_sentence(const std::string& c) {
    if (c == "POSITIVE") return "Greater than 0.";
    const auto open = c.find(" in [");
    const auto dash = c.find(" - ", open == std::string::npos ? 0 : open);
    if (open != std::string::npos && dash != std::string::npos && c.back() == ']') {
        return fmt::format("From {} to {}.", c.substr(open + 5, dash - open - 5), c.substr(dash + 3, c.size() - dash - 4));
    }
    return "Accepts " + c + ".";
}

void man_option(std::ostream& out, const CommandLine& cl, const CLI::Option* opt) {
    out << ".TP\n" << roff_option_head(cl, opt) << "\n";
    out << roff(sentence(opt->get_description())) << "\n";
    std::vector<std::string> notes;
    if (cl.kind_of(opt) == ValueKind::choice) {
        std::string vs;
        for (const auto& v : cl.choices.at(opt)) vs += (vs.empty() ? "" : ", ") + fmt::format("\\fB{}\\fR", roff(v));
        notes.push_back("One of " + vs + ".");
    }
    if (const std::string c = constraint(cl, opt); !c.empty()) notes.push_back(roff(constraint_sentence(c)));
    if (opt->get_required()) notes.push_back("Required.");
    if (is_repeatable(opt)) notes.push_back("May be given more than once.");
    for (const auto& n : notes) out << n << "\n";
}

std::string synopsis_args(const CLI::App& sub) {
    std::string s;
    for (const auto* p : positionals(sub)) {
        const std::string name = upper(p->get_name());
        s += p->get_required() ? fmt::format(" \\fI{}\\fR", name) : fmt::format(" [\\fI{}\\fR]", name);
    }
    return s;
}

void write_man(std::ostream& out, const CommandLine& cl, const Settings& st) {
    const CLI::App& app = cl.app;
    std::string summary = app.get_description();
    if (summary.rfind("ctbpf: ", 0) == 0) summary.erase(0, 7);

    out << ".\\\" Generated by ctbpf-clidoc from the command-line definition (userspace/cli/cli.cpp).\n"
        << ".\\\" Do not edit: change cli.cpp and rebuild.\n";
    out << fmt::format(".TH CTBPF 8 \"{}\" \"ctbpf {}\" \"System Administration\"\n", st.date, ctbpf::cli::kVersion);
    out << ".SH NAME\nctbpf \\- " << roff(summary) << "\n";

    out << ".SH SYNOPSIS\n";
    for (const auto* sub : commands(app)) {
        out << fmt::format("\\fBctbpf {}\\fR [\\fIOPTIONS\\fR]{}\n.br\n", roff(sub->get_name()), synopsis_args(*sub));
    }
    out << "\\fBctbpf \\-\\-help\\fR | \\fBctbpf \\-\\-version\\fR | \\fBctbpf\\fR \\fICOMMAND\\fR \\fB\\-\\-help\\fR\n";

    out << ".SH DESCRIPTION\n"
        << "\\fBctbpf\\fR observes the kernel's connection tracking (nf_conntrack) with eBPF programs.\n"
        << "It shows, as it happens and without dumping the table, who inserts entries and how fast,\n"
        << "which packets conntrack drops and whose, which entries are evicted, and when entries go away.\n"
        << "Totals are counted in the kernel, so they stay exact when the event stream overflows;\n"
        << "lost events are counted and shown.\n"
        << ".PP\n"
        << "It watches its own network namespace unless given \\fB\\-\\-netns\\fR (once per namespace) or\n"
        << "\\fB\\-\\-all\\-netns\\fR (every namespace on the host, including those made later).\n"
        << "Live commands need CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (or root), and CAP_SYS_ADMIN to\n"
        << "enter another namespace; \\fBreport\\fR, \\fBexport\\fR of a file, \\fBwatch \\-\\-replay\\fR and\n"
        << "\\fBevents \\-\\-from\\fR read recordings without privileges.\n"
        << ".PP\n"
        << "Durations are given as 30, 30s, 5m or 2h; sizes as 512M or 2G.\n";

    out << ".SH OPTIONS\n";
    for (const auto* opt : named_options(app)) man_option(out, cl, opt);

    out << ".SH COMMANDS\n";
    for (const auto* sub : commands(app)) {
        out << ".SS " << roff(sub->get_name()) << "\n";
        out << fmt::format("\\fBctbpf {}\\fR [\\fIOPTIONS\\fR]{}\n.PP\n", roff(sub->get_name()), synopsis_args(*sub));
        out << roff(sentence(sub->get_description())) << "\n";
        for (const auto* p : positionals(*sub)) {
            out << ".TP\n" << fmt::format("\\fI{}\\fR", roff(upper(p->get_name()))) << "\n";
            out << roff(sentence(p->get_description())) << (p->get_required() ? "\nRequired." : "") << "\n";
        }
        for (const auto* opt : named_options(*sub)) man_option(out, cl, opt);
    }

    out << ".SH EXIT STATUS\n"
        << "For \\fBstatus\\fR, the monitoring-plugin convention:\n"
        << ".TP\n.B 0\nok\n.TP\n.B 1\nwarning\n.TP\n.B 2\ncritical\n.TP\n.B 3\n"
        << "unknown: bad usage, or the table could not be read\n"
        << ".PP\nFor every other command:\n"
        << ".TP\n.B 0\ndone\n.TP\n.B 1\nfailed; one line on standard error says why (privileges, kernel, file)\n"
        << ".TP\n.B 2\nbad usage: unknown command or option, or a bad value\n";

    out << ".SH FILES\n"
        << ".TP\n.I /sys/kernel/btf/vmlinux\nThe kernel's BTF: the BPF programs are relocated against it when they load.\n"
        << ".TP\n.I /run/netns/NAME\nNetwork namespaces named by \\fBip netns\\fR, as \\fB\\-\\-netns\\fR \\fINAME\\fR finds them.\n"
        << ".TP\n.I /proc/sys/net/netfilter/nf_conntrack_count\n.PD 0\n"
        << ".TP\n.I /proc/sys/net/netfilter/nf_conntrack_max\n.PD\n"
        << "The table's fill and limit, read per namespace.\n"
        << ".TP\n.I /dev/kmsg\nKernel log lines saying the table was full (\\fBstatus\\fR, \\fBwatch\\fR).\n"
        << ".TP\n.I " << roff(st.unitdir) << "/ctbpf\\-serve.service\n"
        << "systemd unit running \\fBctbpf serve\\fR with only the capabilities it needs.\n"
        << ".TP\n.I " << roff(st.docdir) << "\n"
        << "The README and the documents: events, watch, metrics, recording format, export, deployment.\n";

    out << ".SH SEE ALSO\n"
        << ".BR conntrack (8),\n.BR nft (8),\n.BR ip\\-netns (8),\n.BR bpftool (8),\n.BR systemd.exec (5)\n"
        << ".PP\n" << roff(st.docdir) << "/README.md\n";
}

// ---- bash --------------------------------------------------------------------------------

// Words here are option names and fixed values: no quoting needed, which the checks in
// main() make sure of.
std::string join(const std::vector<std::string>& words) {
    std::string s;
    for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
    return s;
}

std::string bash_action(const CommandLine& cl, const CLI::Option* opt) {
    switch (cl.kind_of(opt)) {
        case ValueKind::choice: return fmt::format("_ctbpf_words \"{}\"", join(cl.choices.at(opt)));
        case ValueKind::file: return "_ctbpf_files";
        case ValueKind::netns: return "_ctbpf_netns";
        case ValueKind::other: break;
    }
    return ":";  // a free value: offer nothing rather than options
}

void write_bash(std::ostream& out, const CommandLine& cl) {
    const CLI::App& app = cl.app;
    std::vector<std::string> top;
    for (const auto* opt : named_options(app))
        for (const auto& s : spellings(opt)) top.push_back(s);
    std::vector<std::string> names;
    for (const auto* sub : commands(app)) names.push_back(sub->get_name());

    // Options that take a value, grouped by what completes it: one case arm per action.
    std::map<std::string, std::vector<std::string>> arms;
    for (const auto* sub : commands(app))
        for (const auto* opt : named_options(*sub))
            if (!is_flag(opt))
                for (const auto& s : spellings(opt)) arms[bash_action(cl, opt)].push_back(sub->get_name() + " " + s);

    out << "# bash completion for ctbpf. Generated by ctbpf-clidoc from the command-line definition\n"
        << "# (userspace/cli/cli.cpp); do not edit. Needs no bash-completion package.\n\n";
    out << "_ctbpf_words() { mapfile -t COMPREPLY < <(compgen -W \"$1\" -- \"$cur\"); }\n"
        << "_ctbpf_files() {\n"
        << "    compopt -o filenames 2>/dev/null\n"
        << "    mapfile -t COMPREPLY < <(compgen -f -- \"$cur\")\n"
        << "}\n"
        << "# A name under /run/netns, or a path to a namespace file.\n"
        << "_ctbpf_netns() {\n"
        << "    if [[ $cur == */* ]]; then _ctbpf_files; return; fi\n"
        << "    local names=\"\"\n"
        << "    [[ -d /run/netns ]] && names=$(command ls /run/netns 2>/dev/null)\n"
        << "    _ctbpf_words \"$names\"\n"
        << "}\n\n";
    out << "_ctbpf() {\n"
        << "    local cur=${COMP_WORDS[COMP_CWORD]} prev=\"\" cmd=\"\" i\n"
        << "    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
        << "    # --backend=k arrives as three words (COMP_WORDBREAKS has '='): the option is before it.\n"
        << "    if [[ $cur == = ]]; then\n"
        << "        cur=\"\"\n"
        << "    elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then\n"
        << "        prev=${COMP_WORDS[COMP_CWORD - 2]}\n"
        << "    fi\n"
        << "    COMPREPLY=()\n"
        << "    # The command is the first word that is not an option: ctbpf itself takes no values.\n"
        << "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        << "        if [[ ${COMP_WORDS[i]} != -* ]]; then cmd=${COMP_WORDS[i]}; break; fi\n"
        << "    done\n"
        << "    if [[ -z $cmd ]]; then\n"
        << "        _ctbpf_words \"" << join(top) << " " << join(names) << "\"\n"
        << "        return 0\n"
        << "    fi\n"
        << "    case \"$cmd $prev\" in\n";
    for (const auto& [action, pats] : arms) {
        std::string alts;
        for (const auto& p : pats) alts += (alts.empty() ? "" : "|") + fmt::format("\"{}\"", p);
        out << "    " << alts << ")\n        " << action << "\n        return 0 ;;\n";
    }
    out << "    esac\n"
        << "    local opts=\"\" positional=0\n"
        << "    case $cmd in\n";
    for (const auto* sub : commands(app)) {
        std::vector<std::string> words;
        for (const auto* opt : named_options(*sub))
            for (const auto& s : spellings(opt)) words.push_back(s);
        out << fmt::format("    {}) opts=\"{}\" positional={} ;;\n", sub->get_name(), join(words),
                           positionals(*sub).empty() ? 0 : 1);
    }
    out << "    *) return 0 ;;\n"
        << "    esac\n"
        << "    if [[ $cur != -* && $positional == 1 ]]; then _ctbpf_files; return 0; fi\n"
        << "    _ctbpf_words \"$opts\"\n"
        << "    return 0\n"
        << "}\n"
        << "complete -F _ctbpf ctbpf\n";
}

// ---- zsh ---------------------------------------------------------------------------------

// Text inside '...' in zsh, and inside an _arguments [explanation], where ] ends it.
std::string zsh_text(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (c == '\'') out += "'\\''";
        else if (c == '[' || c == ']' || c == '\\') out += std::string("\\") + c;
        else out += c;
    }
    return out;
}

std::string zsh_option_spec(const CommandLine& cl, const CLI::Option* opt) {
    const auto names = spellings(opt);
    const bool flag = is_flag(opt);
    // --help and --version end the command: nothing else goes with them.
    const bool help = opt->get_lnames().size() == 1 &&
                      (opt->get_lnames().front() == "help" || opt->get_lnames().front() == "version");
    std::string exclude;
    if (help) exclude = "(- *)";
    else if (names.size() > 1 && !is_repeatable(opt)) exclude = "(" + join(names) + ")";
    std::string prefix = is_repeatable(opt) ? "*" : "";
    // -o takes its value in the same word or the next, --output=VALUE or --output VALUE.
    auto spelled = [&](const std::string& n) {
        if (flag) return n;
        return n + (n.rfind("--", 0) == 0 ? "=" : "+");
    };
    std::string head;
    if (names.size() == 1) {
        head = "'" + exclude + prefix + spelled(names[0]);
    } else {
        std::string alts;
        for (const auto& n : names) alts += (alts.empty() ? "" : ",") + prefix + spelled(n);
        head = "'" + exclude + "'{" + alts + "}'";
    }
    std::string spec = head + "[" + zsh_text(opt->get_description()) + "]";
    if (!flag) {
        std::string l = opt->get_lnames().empty() ? opt->get_name() : opt->get_lnames().front();
        switch (cl.kind_of(opt)) {
            case ValueKind::choice: spec += ":" + l + ":(" + join(cl.choices.at(opt)) + ")"; break;
            case ValueKind::file: spec += ":file:_files"; break;
            case ValueKind::netns: spec += ":namespace:_ctbpf_netns"; break;
            case ValueKind::other: spec += ":" + l + ": "; break;
        }
    }
    return spec + "'";
}

void write_zsh(std::ostream& out, const CommandLine& cl) {
    const CLI::App& app = cl.app;
    out << "#compdef ctbpf\n"
        << "# zsh completion for ctbpf. Generated by ctbpf-clidoc from the command-line definition\n"
        << "# (userspace/cli/cli.cpp); do not edit.\n\n"
        << "# A name under /run/netns, or a path to a namespace file.\n"
        << "_ctbpf_netns() {\n"
        << "  local -a names\n"
        << "  names=(/run/netns/*(N:t))\n"
        << "  _alternative 'netns:namespace:compadd -a names' 'files:path:_files'\n"
        << "}\n\n"
        << "_ctbpf() {\n"
        << "  local curcontext=$curcontext state line ret=1\n"
        << "  typeset -A opt_args\n"
        << "  _arguments -C \\\n";
    for (const auto* opt : named_options(app)) {
        std::string spec = zsh_option_spec(cl, opt);
        out << "    " << spec << " \\\n";
    }
    out << "    '1: :->command' \\\n"
        << "    '*:: :->args' && ret=0\n"
        << "  case $state in\n"
        << "    command)\n"
        << "      local -a commands\n"
        << "      commands=(\n";
    for (const auto* sub : commands(app))
        out << "        '" << sub->get_name() << ":" << zsh_text(sub->get_description()) << "'\n";
    out << "      )\n"
        << "      _describe -t commands 'ctbpf command' commands && ret=0\n"
        << "      ;;\n"
        << "    args)\n"
        << "      curcontext=${curcontext%:*:*}:ctbpf-$line[1]:\n"
        << "      case $line[1] in\n";
    for (const auto* sub : commands(app)) {
        out << "        " << sub->get_name() << ")\n"
            << "          _arguments \\\n";
        for (const auto* opt : named_options(*sub)) out << "            " << zsh_option_spec(cl, opt) << " \\\n";
        for (const auto* p : positionals(*sub))
            out << "            '" << (p->get_required() ? ":" : "::") << zsh_text(p->get_description()) << ":_files' \\\n";
        out << "            && ret=0\n"
            << "          ;;\n";
    }
    out << "      esac\n"
        << "      ;;\n"
        << "  esac\n"
        << "  return ret\n"
        << "}\n\n"
        << "_ctbpf \"$@\"\n";
}

// ---- main --------------------------------------------------------------------------------

// The completions put names and values into shell code unquoted; anything beyond these
// characters would need quoting there, so refuse it here rather than emit broken scripts.
bool plain_word(std::string_view w) {
    if (w.empty()) return false;
    for (const char c : w) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

bool check_words(const CommandLine& cl) {
    bool ok = true;
    auto check = [&](const std::string& w) {
        if (!plain_word(w)) {
            std::fprintf(stderr, "ctbpf-clidoc: '%s' needs quoting in shell code: keep names and values plain\n", w.c_str());
            ok = false;
        }
    };
    for (const auto* sub : commands(cl.app)) {
        check(sub->get_name());
        for (const auto* opt : sub->get_options())
            for (const auto& s : spellings(opt)) check(s);
    }
    for (const auto& [opt, values] : cl.choices)
        for (const auto& v : values) check(v);
    return ok;
}

bool write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
    f.close();
    if (!f) {
        std::fprintf(stderr, "ctbpf-clidoc: cannot write %s\n", path.c_str());
        return false;
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    Settings st;
    std::map<std::string, std::string*> flags{{"--man", &st.man},       {"--bash", &st.bash},
                                               {"--zsh", &st.zsh},       {"--date", &st.date},
                                               {"--docdir", &st.docdir}, {"--unitdir", &st.unitdir}};
    for (int i = 1; i < argc; ++i) {
        const auto it = flags.find(argv[i]);
        if (it == flags.end() || i + 1 >= argc) {
            std::fprintf(stderr, "usage: ctbpf-clidoc --man OUT --bash OUT --zsh OUT [--date D] [--docdir DIR] [--unitdir DIR]\n");
            return 2;
        }
        *it->second = argv[++i];
    }
    const auto cl = ctbpf::cli::make_command_line();
    if (!check_words(*cl)) return 1;
    bool ok = true;
    if (!st.man.empty()) {
        std::ostringstream s;
        write_man(s, *cl, st);
        ok = write_file(st.man, s.str()) && ok;
    }
    if (!st.bash.empty()) {
        std::ostringstream s;
        write_bash(s, *cl);
        ok = write_file(st.bash, s.str()) && ok;
    }
    if (!st.zsh.empty()) {
        std::ostringstream s;
        write_zsh(s, *cl);
        ok = write_file(st.zsh, s.str()) && ok;
    }
    return ok ? 0 : 1;
}
