// The per-connection state machine of services/matchmaker/client_state.hpp.
#include "services/matchmaker/client_state.hpp"

namespace warmline::matchmaker {

using v1::ClientMessage;

bool client_state::use_request_id(const std::string& id, std::size_t max_remembered) {
    if (id.empty() || id.size() > 64) return false;
    if (who == role::none) return true;
    if (!used_.insert(id).second) return false;
    order_.push_back(id);
    if (order_.size() > max_remembered) {
        used_.erase(order_.front());
        order_.pop_front();
    }
    return true;
}

bool client_state::take_token(std::int64_t now_ms, double burst, double per_second) {
    return bucket_.take(now_ms, burst, per_second);
}

bool client_state::allowed(role r, ClientMessage::BodyCase body) {
    using B = ClientMessage::BodyCase;
    if (body == B::kPing || body == B::BODY_NOT_SET) return true;  // an empty body is answered INVALID_ARGUMENT
    switch (r) {
    case role::none:
        return body == B::kSeekerHello || body == B::kListenerSignIn || body == B::kSupervisorSignIn;
    case role::seeker:
        return body == B::kRequestChat || body == B::kCancelRequest || body == B::kRateChat ||
               body == B::kReportChat || body == B::kEndChat;
    case role::listener:
        return body == B::kSetAvailability || body == B::kSetPreferences || body == B::kAcceptOffer ||
               body == B::kDeclineOffer || body == B::kEndChat || body == B::kReportChat ||
               body == B::kAskForSupport || body == B::kSupportSay || body == B::kEndSupport;
    case role::supervisor:
        return body == B::kAnswerSupport || body == B::kSupportSay || body == B::kEndSupport ||
               body == B::kListReports || body == B::kReviewReport;
    }
    return false;
}

}  // namespace warmline::matchmaker
