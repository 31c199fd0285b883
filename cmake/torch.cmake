# Locates libtorch: the torch wheel in the project's virtual environment, or any libtorch via Torch_DIR.
#
# The wheel's own TorchConfig.cmake insists on a CUDA toolkit when the wheel was built with CUDA,
# which a CPU-only build machine does not have; so for the wheel we import its libraries directly.
# libtorch.so pulls libtorch_cuda.so in at load time when present, so CUDA works where a GPU is.
if(DEFINED Torch_DIR OR DEFINED ENV{Torch_DIR})
  find_package(Torch REQUIRED)
  add_library(df_torch INTERFACE)
  target_link_libraries(df_torch INTERFACE ${TORCH_LIBRARIES})
  target_compile_options(df_torch INTERFACE ${TORCH_CXX_FLAGS})
  return()
endif()

set(DF_PYTHON "${CMAKE_SOURCE_DIR}/.venv/bin/python" CACHE FILEPATH "Python with the torch wheel")
# An unpacked torch wheel's torch/ folder, for a wheel that no Python here can import (another
# Python version); such wheels (torch 2.7 and later) all use the C++11 ABI.
set(DF_TORCH_ROOT "" CACHE PATH "torch/ folder of an unpacked torch wheel, instead of DF_PYTHON's")
if(DF_TORCH_ROOT)
  set(_df_torch_out "${DF_TORCH_ROOT}\n1")
  set(_df_torch_rc 0)
else()
  execute_process(
    COMMAND ${DF_PYTHON} -c "import os, torch; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI))"
    OUTPUT_VARIABLE _df_torch_out RESULT_VARIABLE _df_torch_rc OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()
if(NOT _df_torch_rc EQUAL 0)
  message(FATAL_ERROR "torch not importable from ${DF_PYTHON}: run scripts/setup, or set Torch_DIR")
endif()
string(REPLACE "\n" ";" _df_torch_lines "${_df_torch_out}")
list(GET _df_torch_lines 0 DF_TORCH_ROOT)
list(GET _df_torch_lines 1 DF_TORCH_CXX11_ABI)
message(STATUS "libtorch from ${DF_TORCH_ROOT} (cxx11 abi ${DF_TORCH_CXX11_ABI})")

add_library(df_torch INTERFACE)
target_include_directories(df_torch SYSTEM INTERFACE
  ${DF_TORCH_ROOT}/include ${DF_TORCH_ROOT}/include/torch/csrc/api/include)
target_compile_definitions(df_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=${DF_TORCH_CXX11_ABI})
target_link_directories(df_torch INTERFACE ${DF_TORCH_ROOT}/lib)
target_link_libraries(df_torch INTERFACE
  "-Wl,--no-as-needed" ${DF_TORCH_ROOT}/lib/libtorch.so ${DF_TORCH_ROOT}/lib/libtorch_cpu.so
  ${DF_TORCH_ROOT}/lib/libc10.so "-Wl,--as-needed" Threads::Threads)
target_link_options(df_torch INTERFACE "-Wl,-rpath,${DF_TORCH_ROOT}/lib")
