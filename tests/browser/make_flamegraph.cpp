// Writes flame graph SVGs from a fixed, realistic-looking conntrack profile, for the
// headless Chromium check (check_flamegraph.sh) and the picture in docs/export.md.
//   ctbpf_flamegraph_sample plain|diff OUT.svg
// The profile: three networks (10.1.0.0/16 heavy, 10.2.0.0/16, 192.168.0.0/24), a few dozen
// hosts, ports 53/80/443/3908, two network namespaces. "diff" compares it (the incident, in
// which 10.1.2.3 floods udp :3908) with a calmer baseline.
#include <netinet/in.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "ctbpf/error.h"
#include "ctbpf/export.h"

namespace {

using ctbpf::Address;
using ctbpf::FlowKey;

constexpr uint32_t kHostNs = 4026531833u, kPodNs = 4026532290u;

struct Rng {  // deterministic, so the picture and the checks never change
    uint64_t x = 88172645463325252ull;
    uint64_t next(uint64_t n) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        return x % n;
    }
};

FlowKey key(uint32_t ns, const std::string& src, uint16_t dport) {
    const uint8_t proto = dport == 53 || dport == 3908 ? IPPROTO_UDP : IPPROTO_TCP;
    return FlowKey{ns, proto, *Address::parse(src), *Address::parse("10.0.0.1"), 40000, dport};
}

void fill(ctbpf::StackAggregator& agg, bool incident) {
    Rng rng;
    const uint16_t ports[] = {53, 80, 443, 3908};
    // 10.1.0.0/16: four /24s of busy hosts.
    for (int net = 1; net <= 4; ++net)
        for (int host = 1; host <= 6; ++host)
            for (uint16_t port : ports)
                agg.add(key(kHostNs, "10.1." + std::to_string(net) + "." + std::to_string(host * 7), port),
                        20 + rng.next(net == 2 ? 400 : 150));
    // The incident: one host floods udp :3908.
    agg.add(key(kHostNs, "10.1.2.3", 3908), incident ? 9000 : 300);
    agg.add(key(kHostNs, "10.1.2.3", 53), 400);
    // 10.2.0.0/16: fewer hosts, mostly web.
    for (int host = 1; host <= 8; ++host)
        for (uint16_t port : {uint16_t(80), uint16_t(443)})
            agg.add(key(kHostNs, "10.2.0." + std::to_string(10 + host), port), 30 + rng.next(200));
    // 192.168.0.0/24 in a pod's namespace: DNS and web.
    for (int host = 1; host <= 6; ++host)
        for (uint16_t port : {uint16_t(53), uint16_t(443)})
            agg.add(key(kPodNs, "192.168.0." + std::to_string(host * 20), port), 10 + rng.next(120));
}

}  // namespace

int main(int argc, char** argv) try {
    const std::string mode = argc == 3 ? argv[1] : "";
    if (mode != "plain" && mode != "diff") {
        std::cerr << "usage: " << argv[0] << " plain|diff OUT.svg\n";
        return 2;
    }
    const auto by = ctbpf::Hierarchy::parse(ctbpf::kDefaultBy);
    ctbpf::StackAggregator incident(by);
    fill(incident, true);
    std::ofstream out(argv[2]);
    ctbpf::SvgOptions opts;
    opts.subtitle = "--by " + by.to_string();
    if (mode == "plain") {
        opts.title = "Conntrack inserts by source";
        incident.write_svg(out, opts);
    } else {
        ctbpf::StackAggregator baseline(by);
        fill(baseline, false);
        opts.title = "Conntrack inserts: incident vs baseline";
        opts.subtitle.clear();
        ctbpf::write_svg_diff(out, baseline, incident, opts);
    }
    return out.good() ? 0 : 1;
} catch (const ctbpf::Error& e) {
    std::cerr << "ctbpf_flamegraph_sample: " << e.what() << "\n";
    return 1;
}
