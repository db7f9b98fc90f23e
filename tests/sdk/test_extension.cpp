// The process-wide extension table (extension.hpp): what a commit adds, what it refuses, and the
// generation readers watch. Points are named after the test so that no other test sees them.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "profagent/extension.hpp"
#include "profagent/plugin.hpp"

using profagent::ErrorCode;
using profagent::Extension;
using profagent::Status;

namespace {

std::shared_ptr<const void> text(const std::string& value) { return std::make_shared<const std::string>(value); }

std::string text_of(const std::shared_ptr<const void>& value) {
  return *std::static_pointer_cast<const std::string>(value);
}

bool contains(const std::string& text, const std::string& piece) { return text.find(piece) != std::string::npos; }

}  // namespace

TEST_CASE("extensions added through a registrar are readable by point, and each commit raises the generation") {
  profagent::Registrar registrar;
  registrar.add_extension("test.extension.read", "b", text("B"));
  registrar.add_extension("test.extension.read", "a", text("A"));
  registrar.add_extension("test.extension.other", "a", text("other"));
  CHECK(registrar.extensions().size() == 3);
  CHECK(profagent::extensions("test.extension.read").empty());

  const std::uint64_t before = profagent::extensions_generation();
  REQUIRE(profagent::add_extensions(registrar.extensions(), "/plugins/libreader.so").is_ok());
  CHECK(profagent::extensions_generation() == before + 1);
  profagent::ExtensionTable table = profagent::extensions("test.extension.read");
  REQUIRE(table.size() == 2);
  CHECK(text_of(table.at("a")) == "A");
  CHECK(text_of(table.at("b")) == "B");
  CHECK(profagent::extensions("test.extension.other").size() == 1);
  CHECK(profagent::extension_origin("test.extension.read", "a") == "/plugins/libreader.so");
  CHECK(profagent::extension_origin("test.extension.read", "c").empty());
  CHECK(profagent::add_extensions({}, "/plugins/libempty.so").is_ok());
  CHECK(profagent::extensions_generation() == before + 1);  // nothing added, nothing to rebuild
}

TEST_CASE("an extension another origin added is refused naming both, and the refused commit adds nothing") {
  REQUIRE(profagent::add_extensions({Extension{"test.extension.clash", "op", text("first")}}, "/p/libfirst.so").is_ok());
  const std::uint64_t generation = profagent::extensions_generation();
  std::vector<Extension> second = {Extension{"test.extension.clash", "new", text("second")},
                                   Extension{"test.extension.clash", "op", text("second")}};
  Status checked = profagent::check_extensions(second, "/p/libsecond.so");
  CHECK(checked.code() == ErrorCode::kPluginLoad);
  CHECK(checked.message() == "duplicate extension 'test.extension.clash/op': /p/libsecond.so and /p/libfirst.so");
  Status added = profagent::add_extensions(second, "/p/libsecond.so");
  CHECK(added.message() == checked.message());
  CHECK(profagent::extensions("test.extension.clash").size() == 1);
  CHECK(text_of(profagent::extensions("test.extension.clash").at("op")) == "first");
  CHECK(profagent::extensions_generation() == generation);

  // The same origin adding it again (its library loaded by a second plugin manager) is accepted.
  CHECK(profagent::add_extensions({Extension{"test.extension.clash", "op", text("again")}}, "/p/libfirst.so").is_ok());
  CHECK(text_of(profagent::extensions("test.extension.clash").at("op")) == "again");
}

TEST_CASE("an extension without point, name or value, or given twice by one plugin, is refused") {
  auto refusal = [](const std::vector<Extension>& entries) {
    return profagent::check_extensions(entries, "/p/libbad.so").message();
  };
  CHECK(contains(refusal({Extension{"", "x", text("v")}}), "empty point or name (in /p/libbad.so)"));
  CHECK(contains(refusal({Extension{"test.extension.bad", "", text("v")}}), "empty point or name"));
  CHECK(contains(refusal({Extension{"test.extension.bad", "x", nullptr}}), "'test.extension.bad/x' has no value"));
  CHECK(refusal({Extension{"test.extension.bad", "x", text("1")}, Extension{"test.extension.bad", "x", text("2")}}) ==
        "duplicate extension 'test.extension.bad/x' within /p/libbad.so");
  CHECK(profagent::extensions("test.extension.bad").empty());
}
