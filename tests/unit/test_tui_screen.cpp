// Unit tests for the terminal client's screens, drawn into an 80x24 vt100 curses screen in memory.
#include <gtest/gtest.h>

#include <cstdio>

#include "tui/curses_include.h"

#include "tui/screen.h"

namespace df::tui {
namespace {

class TuiScreen : public ::testing::Test {
 protected:
  void SetUp() override {
    output_ = std::fopen("/dev/null", "w");
    input_ = std::fopen("/dev/null", "r");
    use_env(FALSE);
    screen_ = newterm("vt100", output_, input_);
    ASSERT_NE(screen_, nullptr);
    state_.on_reply(pixels::ListModelsRequest{},
                    {{"type", "model_list"},
                     {"models", {{{"name", "tiny"}, {"path", "/t"}, {"model_type", "checkpoint"},
                                  {"size_mb", 1}}}}});
    state_.on_reply(pixels::StatusRequest{}, {{"type", "status_info"}, {"version", "0.9"},
                                              {"queue_size", 2}, {"active_jobs", 1},
                                              {"uptime_s", 5}});
    form_.set_models(state_.checkpoint_names());
  }
  void TearDown() override {
    endwin();
    delscreen(screen_);
    std::fclose(output_);
    std::fclose(input_);
  }

  void draw() {
    draw_screen({state_, form_, controller_, "zmq tcp://127.0.0.1:5555", false, painter_, images_});
  }
  std::string row(int number) {
    char text[256] = {};
    mvinnstr(number, 0, text, 80);
    return text;
  }
  std::string all_rows() {
    std::string text;
    for (int i = 0; i < 24; ++i) text += row(i) + "\n";
    return text;
  }

  std::FILE* output_ = nullptr;
  std::FILE* input_ = nullptr;
  SCREEN* screen_ = nullptr;
  ClientState state_;
  PromptForm form_;
  std::vector<pixels::Request> sent_;
  Controller controller_{form_, state_, [this](pixels::Request r) { sent_.push_back(r); }};
  ImagePainter painter_{ImageProtocol::kNone, nullptr};
  ImageCache images_{1000};
};

TEST_F(TuiScreen, MainScreenShowsStatusEditorQueueAndHelpIn80x24) {
  state_.on_update({{"type", "progress"}, {"job_id", "0190abcdef"}, {"stage", "sampling"},
                    {"step", 3}, {"total_steps", 8}, {"percent", 40.0}, {"eta_s", 9.0}});
  for (const char c : std::string("a lighthouse")) form_.insert(static_cast<unsigned char>(c));
  draw();
  EXPECT_NE(row(0).find("zmq tcp://127.0.0.1:5555"), std::string::npos) << row(0);
  EXPECT_NE(row(0).find("connected"), std::string::npos);
  EXPECT_NE(row(0).find("queue 2, active 1"), std::string::npos);
  EXPECT_NE(row(1).find("Prompt [a lighthouse"), std::string::npos) << row(1);
  EXPECT_NE(row(2).find("< tiny >"), std::string::npos) << row(2);
  EXPECT_NE(row(3).find("Steps [20"), std::string::npos) << row(3);
  EXPECT_NE(row(4).find("STATUS"), std::string::npos);
  const std::string job = row(5);
  for (const char* part : {"0190abcd", "sampling", "40%", "9s", "running", "####"}) {
    EXPECT_NE(job.find(part), std::string::npos) << part << " in " << job;
  }
  EXPECT_NE(row(23).find("Tab next field"), std::string::npos) << row(23);
  EXPECT_NE(row(23).find("F1 help"), std::string::npos);
}

TEST_F(TuiScreen, ErrorsAndNoticesShowAboveTheHelpLine) {
  state_.on_reply(pixels::PingRequest{}, {{"type", "error"}, {"message", "unknown model"}});
  controller_.handle({'\n', false});
  draw();
  EXPECT_NE(row(22).find("Prompt is empty"), std::string::npos) << row(22);
  EXPECT_NE(row(22).find("error: server: unknown model"), std::string::npos) << row(22);
}

TEST_F(TuiScreen, ReconnectingShowsInTheStatusLine) {
  state_.on_request_failed(pixels::StatusRequest{}, true, "no answer");
  draw();
  EXPECT_NE(row(0).find("reconnecting"), std::string::npos) << row(0);
}

TEST_F(TuiScreen, GalleryListsImagesWithTheirWholePath) {
  const std::string path =
      "/srv/dreamforge-data/artifacts/dreamforge/default/jobs/0190abcd-0000-7000-8000-0123456789ab"
      "/1/1700000000000_0_64x64_1234.png";
  state_.on_update({{"type", "job_complete"}, {"job_id", "0190abcd-0000-7000-8000-0123456789ab"},
                    {"image_path", path}, {"duration_s", 2.0}});
  controller_.handle({27, false});
  controller_.handle({'g', false});
  draw();
  const std::string screen = all_rows();
  EXPECT_NE(screen.find("GALLERY  1 image(s)"), std::string::npos) << screen;
  EXPECT_NE(row(2).find("0190abcd 64x64"), std::string::npos) << row(2);
  EXPECT_NE(row(2).find("1700000000000_0_64x64_1234.png"), std::string::npos) << row(2);
  std::string joined;
  for (int i = 0; i < 24; ++i) {
    std::string line = row(i);
    line.erase(line.find_last_not_of(' ') + 1);
    joined += line;
  }
  EXPECT_NE(joined.find(path), std::string::npos) << screen;
  EXPECT_NE(row(23).find("q quit"), std::string::npos);
}

TEST_F(TuiScreen, CompareShowsBothModelsSideBySide) {
  state_.on_reply(pixels::ListModelsRequest{},
                  {{"type", "model_list"},
                   {"models", {{{"name", "tiny"}, {"path", "/t"}, {"model_type", "checkpoint"},
                                {"size_mb", 1}},
                               {{"name", "other"}, {"path", "/o"}, {"model_type", "checkpoint"},
                                {"size_mb", 1}}}}});
  form_.set_models(state_.checkpoint_names());
  form_.insert(U'x');
  controller_.handle({27, false});
  controller_.handle({'m', false});
  controller_.handle({'\n', false});
  ASSERT_EQ(sent_.size(), 2u);
  const auto& a = std::get<pixels::GenerateRequest>(sent_[0]);
  const auto& b = std::get<pixels::GenerateRequest>(sent_[1]);
  state_.on_reply(a, {{"type", "job_accepted"}, {"job_id", a.id}, {"estimated_time_s", 1}});
  state_.on_reply(b, {{"type", "job_accepted"}, {"job_id", b.id}, {"estimated_time_s", 1}});
  state_.on_update({{"type", "job_complete"}, {"job_id", a.id}, {"image_path", "/out/a_1.png"},
                    {"duration_s", 3.0}});
  draw();
  EXPECT_NE(row(2).find("< tiny >"), std::string::npos) << row(2);
  EXPECT_NE(row(2).find("< other >"), std::string::npos) << row(2);
  EXPECT_EQ(row(5).find("tiny"), 0u) << row(5);
  EXPECT_NE(row(5).find("other"), std::string::npos) << row(5);
  EXPECT_NE(row(6).find("done 100%"), std::string::npos) << row(6);
  EXPECT_NE(row(6).find("queued"), std::string::npos) << row(6);
  EXPECT_NE(row(8).find("duration 3s"), std::string::npos) << row(8);
  EXPECT_NE(row(9).find("a_1.png"), std::string::npos) << row(9);
}

TEST_F(TuiScreen, HelpBoxListsTheKeys) {
  controller_.handle({KEY_F(1), true});
  draw();
  const std::string screen = all_rows();
  for (const char* key : {"cancel the selected job", "gallery", "compare", "quit", "Tab"}) {
    EXPECT_NE(screen.find(key), std::string::npos) << key << "\n" << screen;
  }
}

}  // namespace
}  // namespace df::tui
