// Webhook units: Standard Webhooks signatures, the retry schedule, which targets may be reached
// (also at connect time), and the request fields that subscribe a job.
#include <gtest/gtest.h>

#include <numeric>

#include "api/job_webhooks.h"
#include "core/base64.h"
#include "core/error.h"
#include "test_support.h"
#include "webhooks/retry_schedule.h"
#include "webhooks/webhook_dispatcher.h"
#include "webhooks/webhook_sender.h"
#include "webhooks/webhook_signature.h"
#include "webhooks/webhook_target.h"

namespace df::webhooks {
namespace {

using nlohmann::json;
namespace ip = boost::asio::ip;

TEST(WebhookSignature, MatchesTheStandardWebhooksExample) {
  // The example of the Standard Webhooks specification's reference libraries.
  const auto key = webhook_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "secret");
  EXPECT_EQ(sign_webhook(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, AnyChangeOfIdTimeOrBodyChangesIt) {
  const auto key = webhook_secret_key(generate_webhook_secret(), "secret");
  const std::string base = sign_webhook(key, "msg_1", 100, "{}");
  EXPECT_NE(sign_webhook(key, "msg_2", 100, "{}"), base);
  EXPECT_NE(sign_webhook(key, "msg_1", 101, "{}"), base);
  EXPECT_NE(sign_webhook(key, "msg_1", 100, "{ }"), base);
}

TEST(WebhookSignature, GeneratedSecretsAreFreshWhsecKeys) {
  const std::string a = generate_webhook_secret();
  EXPECT_EQ(a.rfind("whsec_", 0), 0u);
  EXPECT_EQ(webhook_secret_key(a, "secret").size(), 32u);
  EXPECT_NE(a, generate_webhook_secret());
}

TEST(WebhookSignature, MalformedSecretsAreRefusedByName) {
  for (const std::string bad : {"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ="}) {
    const Error error = test::error_of([&] { webhook_secret_key(bad, "DREAMFORGE_WEBHOOK_SECRET"); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(std::string(error.what()).find("DREAMFORGE_WEBHOOK_SECRET"), std::string::npos) << bad;
  }
}

TEST(WebhookRetrySchedule, TwelveAttemptsOverMoreThanSeveralHours) {
  int64_t total = 0;
  int attempts = 1;
  while (auto delay = webhook_retry_delay_ms(attempts, 5000)) {
    EXPECT_GT(*delay, 0);
    total += *delay;
    ++attempts;
  }
  EXPECT_EQ(attempts, kMaxWebhookAttempts);
  EXPECT_EQ(kMaxWebhookAttempts, 12);
  EXPECT_GT(total, int64_t{6} * 3600 * 1000) << "retries span hours";
  EXPECT_EQ(*webhook_retry_delay_ms(1, 5000), 5000);
  EXPECT_LT(*webhook_retry_delay_ms(1, 5000), *webhook_retry_delay_ms(2, 5000));
  EXPECT_EQ(*webhook_retry_delay_ms(3, 10), 240) << "the schedule scales with its base";
}

TEST(WebhookRetrySchedule, RetriesTimeoutsThrottlingAndServerErrorsOnly) {
  for (int status : {0, 408, 429, 500, 502, 503, 504}) EXPECT_TRUE(webhook_retryable(status)) << status;
  for (int status : {400, 401, 403, 404, 410, 422}) EXPECT_FALSE(webhook_retryable(status)) << status;
}

TEST(WebhookTarget, InternalAddressesAreNamed) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"127.0.0.1", "loopback"},     {"10.1.2.3", "private"},      {"172.20.0.1", "private"},
      {"192.168.1.1", "private"},    {"169.254.169.254", "link-local"},
      {"100.64.0.1", "shared (carrier-grade NAT)"},                 {"0.0.0.0", "unspecified"},
      {"224.0.0.1", "multicast"},    {"::1", "loopback"},          {"fe80::1", "link-local"},
      {"fd00::1", "unique local"},   {"::ffff:127.0.0.1", "loopback"},
      {"::", "unspecified"},         {"64:ff9b::a00:1", "private"}};
  for (const auto& [address, kind] : cases) {
    EXPECT_EQ(internal_address_kind(ip::make_address(address)), kind) << address;
  }
  for (const std::string address : {"93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"}) {
    EXPECT_EQ(internal_address_kind(ip::make_address(address)), "") << address;
  }
}

TEST(WebhookTarget, AllowlistAdmitsAddressesNetworksAndNames) {
  const TargetPolicy policy({"127.0.0.1", "10.0.0.0/8", "fd00::/8", "Hooks.Internal"});
  EXPECT_EQ(policy.refusal("x", ip::make_address("127.0.0.1")), "");
  EXPECT_NE(policy.refusal("x", ip::make_address("127.0.0.2")), "");
  EXPECT_EQ(policy.refusal("x", ip::make_address("10.9.8.7")), "");
  EXPECT_EQ(policy.refusal("x", ip::make_address("::ffff:10.9.8.7")), "");
  EXPECT_EQ(policy.refusal("x", ip::make_address("fd12::1")), "");
  EXPECT_EQ(policy.refusal("hooks.internal", ip::make_address("192.168.0.5")), "");
  EXPECT_EQ(policy.refusal("x", ip::make_address("8.8.8.8")), "") << "public is always allowed";
  const std::string why = TargetPolicy().refusal("db", ip::make_address("192.168.0.5"));
  EXPECT_NE(why.find("private"), std::string::npos) << why;
  EXPECT_NE(why.find("DREAMFORGE_WEBHOOK_ALLOWED_TARGETS"), std::string::npos) << why;
  EXPECT_EQ(test::error_code_of([] { TargetPolicy({"10.0.0.0/99"}); }), ErrorCode::kInvalidArgument);
}

TEST(WebhookTarget, CheckRefusesInternalTargetsAndMalformedUrls) {
  const TargetPolicy closed;
  for (const std::string url :
       {"http://127.0.0.1:9/hook", "http://localhost/hook", "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data", "http://10.0.0.1/", "ftp://8.8.8.8/",
        "http://user:pw@8.8.8.8/", "not a url", "http:///path", "https://no-such-host.invalid/"}) {
    EXPECT_EQ(test::error_code_of([&] { closed.check(url); }), ErrorCode::kInvalidArgument) << url;
  }
  EXPECT_NO_THROW(closed.check("https://8.8.8.8/hook"));
  EXPECT_NO_THROW(closed.check("http://[2606:4700::1111]:8080/hook?x=1"));
  const TargetPolicy open({"127.0.0.1", "::1"});
  EXPECT_NO_THROW(open.check("http://127.0.0.1:9/hook"));
  EXPECT_NO_THROW(open.check("http://localhost:9/hook")) << "localhost resolves to allowed addresses";
  EXPECT_EQ(test::error_code_of([] { TargetPolicy().check("http://x/" + std::string(3000, 'a')); }),
            ErrorCode::kInvalidArgument);
}

TEST(WebhookSender, RefusesAnInternalAddressAtConnectTime) {
  WebhookPost post;
  post.url = "http://localhost:9/hook";  // a name: what it resolves to is checked on connect
  post.body = "{}";
  post.timeout_ms = 2000;
  const WebhookAnswer answer = post_webhook(post, TargetPolicy());
  EXPECT_TRUE(answer.refused);
  EXPECT_EQ(answer.status, 0);
  EXPECT_NE(answer.error.find("loopback"), std::string::npos) << answer.error;
}

TEST(WebhookSender, UnreachableAllowedTargetIsNoAnswerWorthRetrying) {
  WebhookPost post;
  post.url = "http://127.0.0.1:9/hook";  // discard port: nothing listens
  post.body = "{}";
  post.timeout_ms = 2000;
  const WebhookAnswer answer = post_webhook(post, TargetPolicy({"127.0.0.1"}));
  EXPECT_FALSE(answer.refused);
  EXPECT_EQ(answer.status, 0);
  EXPECT_FALSE(answer.error.empty());
  EXPECT_TRUE(webhook_retryable(answer.status));
}

TEST(WebhookPayload, IsTypedTimestampedData) {
  store::WebhookDelivery delivery;
  delivery.event = "completed";
  Event event;
  event.created_ms = 1700000000123;
  const json body = webhook_payload(delivery, event, {{"job", {{"id", "j1"}}}});
  EXPECT_EQ(body["type"], "job.completed");
  EXPECT_EQ(body["timestamp"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(body["data"]["job"]["id"], "j1");
}

TEST(WebhookSubscriptionFields, DefaultsToItemsAndCompletion) {
  const auto subscription = api::webhook_subscription({{"webhook", "https://example.com/h"}});
  EXPECT_EQ(subscription.url, "https://example.com/h");
  EXPECT_EQ(subscription.events, (std::vector<std::string>{"item", "completed"}));
  EXPECT_TRUE(api::webhook_subscription({{"prompt", "x"}}).url.empty());
  EXPECT_TRUE(api::webhook_subscription(json::array()).url.empty());
}

TEST(WebhookSubscriptionFields, BadFieldsAreNamedWithTheirPrefix) {
  const std::vector<json> bad = {
      {{"webhook", 42}},
      {{"webhook", "https://example.com/h"}, {"webhook_events", {"start", "finish"}}},
      {{"webhook", "https://example.com/h"}, {"webhook_events", json::array()}},
      {{"webhook", "https://example.com/h"}, {"webhook_events", {"start", "start"}}},
      {{"webhook_events", {"start"}}}};
  for (const auto& fields : bad) {
    const Error error = test::error_of([&] { api::webhook_subscription(fields, "extra_data."); });
    EXPECT_EQ(error.code(), ErrorCode::kInvalidArgument) << fields;
    const std::string field = error.details()["fields"][0]["field"];
    EXPECT_EQ(field.rfind("extra_data.webhook", 0), 0u) << field;
  }
}

}  // namespace
}  // namespace df::webhooks
