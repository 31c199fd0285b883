// A node output: an immutable object of any C++ type, tagged with its ComfyUI type ("LATENT").
#pragma once

#include <memory>
#include <string>
#include <typeindex>
#include <typeinfo>
#include <utility>

#include "core/error.h"

namespace df::graph {

class Value {
 public:
  // Wraps `object`; `type` is the ComfyUI type name of the output slot, e.g. "MODEL".
  template <class T>
  static Value of(std::string type, T object) {
    return Value(std::move(type), typeid(T), std::make_shared<const T>(std::move(object)));
  }
  // Shares an existing object without copying it.
  template <class T>
  static Value shared(std::string type, std::shared_ptr<const T> object) {
    return Value(std::move(type), typeid(T), std::move(object));
  }

  const std::string& type() const { return type_; }
  // Whether the object is a T.
  template <class T>
  bool holds() const {
    return std::type_index(typeid(T)) == cpp_type_;
  }

  // The object; throws df::Error(kInternal) when it is not a T.
  template <class T>
  const T& as() const {
    return *share<T>();
  }
  template <class T>
  std::shared_ptr<const T> share() const {
    if (std::type_index(typeid(T)) != cpp_type_) {
      throw Error(ErrorCode::kInternal, "a " + type_ + " value was read as the wrong C++ type (" +
                                            typeid(T).name() + ")");
    }
    return std::static_pointer_cast<const T>(data_);
  }

 private:
  Value(std::string type, const std::type_info& cpp_type, std::shared_ptr<const void> data)
      : type_(std::move(type)), cpp_type_(cpp_type), data_(std::move(data)) {}

  std::string type_;
  std::type_index cpp_type_;
  std::shared_ptr<const void> data_;
};

}  // namespace df::graph
