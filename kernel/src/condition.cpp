#include "profagent/kernel/condition.hpp"

#include <cctype>
#include <cstdlib>

namespace profagent::kernel {

struct Condition::Node {
  enum class Kind { kOr, kAnd, kNot, kCompare, kLiteral, kRef };
  Kind kind = Kind::kLiteral;
  std::string op;  // kCompare: "==", "!=", "<", "<=", ">", ">="
  std::shared_ptr<const Node> lhs;
  std::shared_ptr<const Node> rhs;
  Json literal;      // kLiteral
  ConditionRef ref;  // kRef
  std::string text;  // the operand as written, for messages
};

namespace {

using Node = Condition::Node;
using NodePtr = std::shared_ptr<const Node>;

struct Token {
  enum class Type { kEnd, kNumber, kString, kName, kOp };
  Type type = Type::kEnd;
  std::string text;                   // as written
  Json value;                         // kNumber, kString
  std::vector<std::string> segments;  // kName: the dot-separated names
  int column = 0;                     // 1-based
};

// Thrown inside the parser only; parse() turns it into a kParseError Status.
struct SyntaxError {
  int column;
  std::string message;
};

bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}
bool is_digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

std::string describe(const Token& token) {
  return token.type == Token::Type::kEnd ? "end of expression" : "'" + token.text + "'";
}

class Lexer {
 public:
  explicit Lexer(const std::string& text) : text_(text) {}

  std::vector<Token> tokens() {
    std::vector<Token> out;
    while (true) {
      while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      if (pos_ >= text_.size()) break;
      out.push_back(next());
    }
    Token end;
    end.column = static_cast<int>(text_.size()) + 1;
    out.push_back(end);
    return out;
  }

 private:
  int column() const { return static_cast<int>(pos_) + 1; }

  Token next() {
    char c = text_[pos_];
    char after = pos_ + 1 < text_.size() ? text_[pos_ + 1] : '\0';
    if (is_digit(c) || (c == '.' && is_digit(after)) ||
        ((c == '-' || c == '+') && (is_digit(after) || after == '.')))
      return number();
    if (c == '\'' || c == '"') return string();
    if (is_name_start(c)) return name();
    return op();
  }

  Token number() {
    Token token{Token::Type::kNumber, "", nullptr, {}, column()};
    std::size_t start = pos_;
    bool integral = true;
    if (text_[pos_] == '-' || text_[pos_] == '+') ++pos_;
    while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      integral = false;
      ++pos_;
      while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      std::size_t mark = pos_++;
      if (pos_ < text_.size() && (text_[pos_] == '-' || text_[pos_] == '+')) ++pos_;
      if (pos_ < text_.size() && is_digit(text_[pos_])) {
        integral = false;
        while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
      } else {
        pos_ = mark;  // not an exponent after all
      }
    }
    token.text = text_.substr(start, pos_ - start);
    if (integral)
      token.value = static_cast<std::int64_t>(std::strtoll(token.text.c_str(), nullptr, 10));
    else
      token.value = std::strtod(token.text.c_str(), nullptr);
    return token;
  }

  Token string() {
    Token token{Token::Type::kString, "", nullptr, {}, column()};
    std::size_t start = pos_;
    char quote = text_[pos_++];
    std::string value;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\' && pos_ + 1 < text_.size()) ++pos_;
      value += text_[pos_++];
    }
    if (pos_ >= text_.size())
      throw SyntaxError{token.column,
                        "unterminated string (expected a closing " + std::string(1, quote) + ")"};
    ++pos_;
    token.text = text_.substr(start, pos_ - start);
    token.value = value;
    return token;
  }

  Token name() {
    Token token{Token::Type::kName, "", nullptr, {}, column()};
    std::size_t start = pos_;
    while (true) {
      std::size_t segment = pos_;
      while (pos_ < text_.size() && is_name_char(text_[pos_])) ++pos_;
      token.segments.push_back(text_.substr(segment, pos_ - segment));
      // A dot continues the reference when a name or a list index follows it.
      if (pos_ + 1 < text_.size() && text_[pos_] == '.' && is_name_char(text_[pos_ + 1]))
        ++pos_;
      else
        break;
    }
    token.text = text_.substr(start, pos_ - start);
    return token;
  }

  Token op() {
    static const char* const kOps[] = {"==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "(", ")"};
    for (const char* candidate : kOps) {
      std::string text = candidate;
      if (text_.compare(pos_, text.size(), text) == 0) {
        Token token{Token::Type::kOp, text, nullptr, {}, column()};
        pos_ += text.size();
        return token;
      }
    }
    if (text_[pos_] == '=') throw SyntaxError{column(), "expected '==', got '='"};
    throw SyntaxError{column(), "unexpected character '" + std::string(1, text_[pos_]) + "'"};
  }

  const std::string& text_;
  std::size_t pos_ = 0;
};

class ExpressionParser {
 public:
  ExpressionParser(std::vector<Token> tokens, std::vector<ConditionRef>& refs)
      : tokens_(std::move(tokens)), refs_(refs) {}

  NodePtr parse() {
    NodePtr root = parse_or();
    if (peek().type != Token::Type::kEnd)
      throw SyntaxError{peek().column, "expected 'and', 'or' or end of expression, got " + describe(peek())};
    return root;
  }

 private:
  const Token& peek() const { return tokens_[index_]; }
  const Token& take() { return tokens_[index_ < tokens_.size() - 1 ? index_++ : index_]; }
  bool is_keyword(const Token& token, const char* word) const {
    return token.type == Token::Type::kName && token.text == word;
  }
  bool is_op(const Token& token, const char* op) const {
    return token.type == Token::Type::kOp && token.text == op;
  }

  static NodePtr binary(Node::Kind kind, std::string op, NodePtr lhs, NodePtr rhs) {
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->op = std::move(op);
    node->text = lhs->text + " " + node->op + " " + rhs->text;
    node->lhs = std::move(lhs);
    node->rhs = std::move(rhs);
    return node;
  }

  NodePtr parse_or() {
    NodePtr lhs = parse_and();
    while (is_keyword(peek(), "or") || is_op(peek(), "||")) {
      take();
      lhs = binary(Node::Kind::kOr, "or", lhs, parse_and());
    }
    return lhs;
  }

  NodePtr parse_and() {
    NodePtr lhs = parse_not();
    while (is_keyword(peek(), "and") || is_op(peek(), "&&")) {
      take();
      lhs = binary(Node::Kind::kAnd, "and", lhs, parse_not());
    }
    return lhs;
  }

  NodePtr parse_not() {
    if (is_keyword(peek(), "not") || is_op(peek(), "!")) {
      take();
      auto node = std::make_shared<Node>();
      node->kind = Node::Kind::kNot;
      node->lhs = parse_not();
      node->text = "not " + node->lhs->text;
      return node;
    }
    return parse_compare();
  }

  NodePtr parse_compare() {
    NodePtr lhs = parse_value();
    static const char* const kComparisons[] = {"==", "!=", "<", "<=", ">", ">="};
    for (const char* op : kComparisons) {
      if (is_op(peek(), op)) {
        take();
        return binary(Node::Kind::kCompare, op, lhs, parse_value());
      }
    }
    return lhs;
  }

  NodePtr parse_value() {
    const Token& token = take();
    auto node = std::make_shared<Node>();
    node->text = token.text;
    switch (token.type) {
      case Token::Type::kNumber:
      case Token::Type::kString:
        node->literal = token.value;
        return node;
      case Token::Type::kName:
        return parse_name(token, node);
      case Token::Type::kOp:
        if (token.text == "(") {
          NodePtr inner = parse_or();
          if (!is_op(peek(), ")")) throw SyntaxError{peek().column, "expected ')', got " + describe(peek())};
          take();
          return inner;
        }
        break;
      case Token::Type::kEnd:
        break;
    }
    throw SyntaxError{token.column,
                      "expected a value (number, string, true, false, null, stage.port or "
                      "'('), got " +
                          describe(token)};
  }

  NodePtr parse_name(const Token& token, const std::shared_ptr<Node>& node) {
    if (token.segments.size() == 1) {
      const std::string& word = token.text;
      if (word == "true" || word == "false") {
        node->literal = word == "true";
        return node;
      }
      if (word == "null") {
        node->literal = nullptr;
        return node;
      }
      if (word == "and" || word == "or" || word == "not")
        throw SyntaxError{token.column, "expected a value, got '" + word + "'"};
      throw SyntaxError{token.column, "expected a reference 'stage.port', got '" + word + "'"};
    }
    node->kind = Node::Kind::kRef;
    node->ref.stage = token.segments[0];
    node->ref.port = token.segments[1];
    node->ref.path.assign(token.segments.begin() + 2, token.segments.end());
    node->ref.column = token.column;
    refs_.push_back(node->ref);
    return node;
  }

  std::vector<Token> tokens_;
  std::size_t index_ = 0;
  std::vector<ConditionRef>& refs_;
};

// ---------------------------------------------------------------------------------------------
// Evaluation

std::string type_name(const Json& value) {
  if (value.is_boolean()) return "a boolean";
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_null()) return "null";
  if (value.is_array()) return "a list";
  return "an object";
}

std::string shown(const Json& value) {
  std::string text = value.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

Result<Json> read_ref(const ConditionRef& ref, const std::string& text,
                      const Condition::SummaryLookup& lookup) {
  std::optional<Json> summary = lookup(ref.stage, ref.port);
  if (!summary)
    return Status(ErrorCode::kNotFound,
                  "'" + text + "': there is no artifact '" + ref.stage + "." + ref.port + "'");
  Json current = std::move(*summary);
  std::string where = ref.stage + "." + ref.port;
  for (const auto& key : ref.path) {
    if (current.is_object()) {
      auto it = current.find(key);
      if (it == current.end()) {
        std::string keys;
        for (auto k = current.begin(); k != current.end(); ++k) keys += (keys.empty() ? "" : ", ") + k.key();
        return Status(ErrorCode::kNotFound, "'" + text + "': '" + where + "' has no key '" + key +
                                                "' (keys: " + (keys.empty() ? "none" : keys) + ")");
      }
      current = *it;
    } else if (current.is_array()) {
      char* end = nullptr;
      unsigned long index = std::strtoul(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || index >= current.size())
        return Status(ErrorCode::kNotFound, "'" + text + "': '" + where + "' has no index '" + key +
                                                "' (size " + std::to_string(current.size()) + ")");
      current = current[index];
    } else {
      return Status(ErrorCode::kNotFound, "'" + text + "': '" + where + "' is " + type_name(current) +
                                              ", it has no key '" + key + "'");
    }
    where += "." + key;
  }
  return current;
}

bool ordering_op(const std::string& op) {
  return op != "==" && op != "!=";
}

template <class T>
bool compare_with(const std::string& op, const T& a, const T& b) {
  if (op == "==") return a == b;
  if (op == "!=") return !(a == b);
  if (op == "<") return a < b;
  if (op == "<=") return !(b < a);
  if (op == ">") return b < a;
  return !(a < b);
}

Result<bool> compare(const Node& node, const Json& a, const Json& b) {
  const std::string& op = node.op;
  if (a.is_number() && b.is_number()) {
    if (a.is_number_integer() && b.is_number_integer())
      return compare_with(op, a.get<std::int64_t>(), b.get<std::int64_t>());
    return compare_with(op, a.get<double>(), b.get<double>());
  }
  if (a.is_string() && b.is_string()) return compare_with(op, a.get<std::string>(), b.get<std::string>());
  bool equality_only = a.is_boolean() || a.is_null() || b.is_boolean() || b.is_null() ||
                       (a.is_structured() && a.type() == b.type());
  // null compares (un)equal to anything, so "x.y == null" can test for absence of a value.
  bool comparable = a.type() == b.type() || a.is_null() || b.is_null();
  if (equality_only && comparable) {
    if (ordering_op(op))
      return Status(ErrorCode::kValidation, "'" + node.text + "': '" + op + "' cannot order " + type_name(a) +
                                                " and " + type_name(b) + " (only == and != apply)");
    return op == "==" ? a == b : a != b;
  }
  return Status(ErrorCode::kValidation, "'" + node.text + "': cannot compare " + type_name(a) + " (" +
                                            shown(a) + ") with " + type_name(b) + " (" + shown(b) + ")");
}

Result<Json> value_of(const Node& node, const Condition::SummaryLookup& lookup);

Result<bool> truth_of(const Node& node, const Condition::SummaryLookup& lookup) {
  switch (node.kind) {
    case Node::Kind::kOr:
    case Node::Kind::kAnd: {
      PROFAGENT_ASSIGN_OR_RETURN(bool lhs, truth_of(*node.lhs, lookup));
      if (node.kind == Node::Kind::kOr ? lhs : !lhs) return lhs;  // short-circuit
      return truth_of(*node.rhs, lookup);
    }
    case Node::Kind::kNot: {
      PROFAGENT_ASSIGN_OR_RETURN(bool inner, truth_of(*node.lhs, lookup));
      return !inner;
    }
    case Node::Kind::kCompare: {
      PROFAGENT_ASSIGN_OR_RETURN(Json lhs, value_of(*node.lhs, lookup));
      PROFAGENT_ASSIGN_OR_RETURN(Json rhs, value_of(*node.rhs, lookup));
      return compare(node, lhs, rhs);
    }
    case Node::Kind::kLiteral:
    case Node::Kind::kRef:
      break;
  }
  PROFAGENT_ASSIGN_OR_RETURN(Json value, value_of(node, lookup));
  if (!value.is_boolean())
    return Status(ErrorCode::kValidation, "'" + node.text + "' is " + type_name(value) + " (" + shown(value) +
                                              "), not a boolean; compare it with something");
  return value.get<bool>();
}

Result<Json> value_of(const Node& node, const Condition::SummaryLookup& lookup) {
  switch (node.kind) {
    case Node::Kind::kLiteral:
      return node.literal;
    case Node::Kind::kRef:
      return read_ref(node.ref, node.text, lookup);
    default: {
      PROFAGENT_ASSIGN_OR_RETURN(bool truth, truth_of(node, lookup));
      return Json(truth);
    }
  }
}

}  // namespace

Result<Condition> Condition::parse(const std::string& text) {
  Condition condition;
  condition.text_ = text;
  try {
    std::vector<Token> tokens = Lexer(text).tokens();
    condition.root_ = ExpressionParser(std::move(tokens), condition.refs_).parse();
  } catch (const SyntaxError& e) {
    return Status(ErrorCode::kParseError, "column " + std::to_string(e.column) + ": " + e.message);
  }
  return condition;
}

Result<bool> Condition::evaluate(const SummaryLookup& summary_of) const {
  if (!root_) return Status(ErrorCode::kInternal, "evaluating a condition that was not parsed");
  return truth_of(*root_, summary_of);
}

}  // namespace profagent::kernel
