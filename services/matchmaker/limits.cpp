// The address hash and the crisis spike rule of services/matchmaker/limits.hpp.
#include "services/matchmaker/limits.hpp"

#include "common/crypto.hpp"


namespace warmline::matchmaker {

std::string address_hash(const std::string& secret, const std::string& bucket) {
    return crypto::base64url_encode(crypto::hmac_sha256(secret, "warmline address bucket " + bucket)).substr(0, 22);
}

crisis_trend crisis_trend_of(const std::vector<std::int64_t>& per_minute, int alert_min, double factor) {
    crisis_trend t;
    std::int64_t recent = 0, before = 0;
    for (std::size_t i = 0; i < per_minute.size() && i < 65; ++i) (i < 5 ? recent : before) += per_minute[i];
    t.last_5m = static_cast<std::uint32_t>(recent);
    t.usual_5m = static_cast<std::uint32_t>((before + 11) / 12);
    t.spike = alert_min > 0 && recent >= alert_min &&
              static_cast<double>(recent) >= factor * static_cast<double>(before) / 12.0;
    return t;
}

}  // namespace warmline::matchmaker
