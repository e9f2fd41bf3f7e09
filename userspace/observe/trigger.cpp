#include <cstdlib>

#include <fmt/format.h>

#include "ctbpf/error.h"
#include "ctbpf/observe.h"

namespace ctbpf {

Trigger parse_triggers(const std::vector<std::string>& specs) {
    Trigger t;
    for (const auto& spec : specs) {
        std::string s;
        for (char c : spec) s += c == '|' ? ',' : c;
        size_t start = 0;
        while (start <= s.size()) {
            size_t end = s.find(',', start);
            if (end == std::string::npos) end = s.size();
            std::string term = s.substr(start, end - start);
            std::erase(term, ' ');
            start = end + 1;
            if (term.empty()) continue;
            if (term == "drops") {
                t.drops = true;
            } else if (term.rfind("fill>=", 0) == 0 || term.rfind("fill>", 0) == 0) {
                std::string num = term.substr(term[5] == '=' ? 6 : 5);
                if (!num.empty() && num.back() == '%') num.pop_back();
                char* e = nullptr;
                const double v = std::strtod(num.c_str(), &e);
                if (num.empty() || *e || v <= 0 || v > 100)
                    throw Error(fmt::format("--trigger '{}': fill must be a percentage, e.g. fill>=90%", spec), 2);
                t.fill = v / 100;
            } else {
                throw Error(fmt::format("--trigger '{}' is not understood: use fill>=N%, drops, or both "
                                        "joined with ','", spec), 2);
            }
            t.text += (t.text.empty() ? "" : " or ") + term;
        }
    }
    return t;
}

}  // namespace ctbpf
