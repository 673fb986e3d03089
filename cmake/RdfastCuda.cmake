# The CUDA module rdfast._C_cuda, per the cache option RDFAST_CUDA (through pip: the RDFAST_CUDA
# environment variable, or -Ccmake.define.RDFAST_CUDA=...):
#   auto  build it when a CUDA compiler is found; if that fails, warn and go on without it
#   on    build it; a missing or failing CUDA compiler is an error
#   off   do not build it
# The module is a CMake project of its own (cmake/cuda/), configured and built here at configure
# time, so that its failure is known before anything is built or installed and cannot fail the CPU
# extension. The compiler: CMAKE_CUDA_COMPILER, else CUDACXX, else nvcc on the PATH, in
# $CUDA_PATH/bin or in /usr/local/cuda/bin. The GPU code: CMAKE_CUDA_ARCHITECTURES, else CUDAARCHS,
# else 80-real;90-real;90-virtual; the module records it (rdfast.backends.cuda refuses GPUs it has
# no code for). build_info.json, installed beside rdfast._C, says what happened:
#   {"RDFAST_CUDA": "auto", "cuda_built": false, "cuda_reason": "why not, and what to change"}

set(RDFAST_CUDA auto CACHE STRING "Build the CUDA kernels: auto (where a CUDA compiler works), on (required) or off")
set_property(CACHE RDFAST_CUDA PROPERTY STRINGS auto on off)
string(TOLOWER "${RDFAST_CUDA}" rdfast_cuda_mode)
if(NOT rdfast_cuda_mode MATCHES "^(auto|on|off)$")
  message(FATAL_ERROR "RDFAST_CUDA: expected auto, on or off, got '${RDFAST_CUDA}'")
endif()

# Writes build_info.json (built: true or false; reason: text) and installs it beside rdfast._C.
function(rdfast_cuda_record built reason)
  string(REPLACE "\\" "\\\\" reason "${reason}")
  string(REPLACE "\"" "\\\"" reason "${reason}")
  string(REPLACE "\n" "\\n" reason "${reason}")
  string(REPLACE "\t" " " reason "${reason}")
  file(WRITE ${CMAKE_BINARY_DIR}/build_info.json
       "{\"RDFAST_CUDA\": \"${rdfast_cuda_mode}\", \"cuda_built\": ${built}, \"cuda_reason\": \"${reason}\"}\n")
  install(FILES ${CMAKE_BINARY_DIR}/build_info.json DESTINATION rdfast)
endfunction()

# Without the module: an error under "on"; otherwise a message (a warning if `failed`) and the record.
function(rdfast_cuda_without reason failed)
  if(rdfast_cuda_mode STREQUAL "on")
    message(FATAL_ERROR "RDFAST_CUDA=on: ${reason}")
  elseif(failed)
    message(WARNING "RDFAST_CUDA=auto: ${reason}; rdfast is built without its CUDA kernels "
                    "(RDFAST_CUDA=on makes this an error, RDFAST_CUDA=off skips the attempt)")
  else()
    message(STATUS "rdfast: ${reason}; building without the CUDA kernels")
  endif()
  rdfast_cuda_record(false "${reason}")
endfunction()

if(rdfast_cuda_mode STREQUAL "off")
  rdfast_cuda_without("RDFAST_CUDA=off" FALSE)
  return()
endif()

# A build folder from before the CUDA module had a project of its own caches, under CMake's own
# help strings, the CUDA compiler found then and nvcc's default architectures: not the user's choices.
function(rdfast_drop_cached var cmake_help)
  get_property(help CACHE ${var} PROPERTY HELPSTRING)
  if("${help}" STREQUAL "${cmake_help}")
    message(STATUS "rdfast: dropping ${var}=${${var}}, cached by an earlier build of rdfast")
    unset(${var} CACHE)
  endif()
endfunction()
rdfast_drop_cached(CMAKE_CUDA_COMPILER "CUDA compiler")
rdfast_drop_cached(CMAKE_CUDA_ARCHITECTURES "CUDA architectures")

if(DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(rdfast_archs_from CMAKE_CUDA_ARCHITECTURES)
  set(rdfast_archs "${CMAKE_CUDA_ARCHITECTURES}")
elseif(DEFINED ENV{CUDAARCHS})
  set(rdfast_archs_from "CUDAARCHS (environment)")
  set(rdfast_archs "$ENV{CUDAARCHS}")
else()
  set(rdfast_archs_from "the default")
  set(rdfast_archs 80-real 90-real 90-virtual)  # sm_80 (A100), sm_90 (H100, H200), PTX for newer GPUs
endif()
set(rdfast_archs_ok TRUE)
foreach(arch IN LISTS rdfast_archs)
  if(NOT arch MATCHES "^[0-9]+(-real|-virtual)?$")
    set(rdfast_archs_ok FALSE)
  endif()
endforeach()
if(NOT rdfast_archs OR NOT rdfast_archs_ok)
  message(FATAL_ERROR "${rdfast_archs_from}: expected CUDA architectures such as 75-real;80-real;90-real;90-virtual "
                      "(compute capabilities as numbers, each optionally -real for GPU code only or -virtual for PTX "
                      "only; rdfast records them to refuse GPUs it has no code for), got '${rdfast_archs}'")
endif()

if(DEFINED CMAKE_CUDA_COMPILER)
  set(rdfast_nvcc "${CMAKE_CUDA_COMPILER}")
elseif(DEFINED ENV{CUDACXX})
  set(rdfast_nvcc "$ENV{CUDACXX}")
else()
  find_program(RDFAST_NVCC nvcc HINTS ENV CUDA_PATH PATH_SUFFIXES bin PATHS /usr/local/cuda/bin)
  if(NOT RDFAST_NVCC)
    string(CONCAT rdfast_cuda_reason "no CUDA compiler found (nvcc on the PATH, in \$CUDA_PATH/bin or /usr/local/cuda/bin, "
                  "or named by CUDACXX or CMAKE_CUDA_COMPILER)")
    rdfast_cuda_without("${rdfast_cuda_reason}" FALSE)
    return()
  endif()
  set(rdfast_nvcc "${RDFAST_NVCC}")
endif()

# a rebuild after an edit of the CUDA sources, also through a direct `cmake --build`
file(GLOB rdfast_cuda_inputs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/csrc/*.h ${CMAKE_CURRENT_SOURCE_DIR}/csrc/*.cuh
     ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda_*.cu ${CMAKE_CURRENT_SOURCE_DIR}/csrc/cuda_*.cpp)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${rdfast_cuda_inputs}
             ${CMAKE_CURRENT_LIST_DIR}/cuda/CMakeLists.txt)

set(rdfast_cuda_dir ${CMAKE_BINARY_DIR}/cuda)
# Another compiler than last time: configure the module's folder afresh (CMake's own re-run after a
# compiler change loses what it knows of the C++ compiler).
if(NOT "${rdfast_nvcc}" STREQUAL "${RDFAST_CUDA_CONFIGURED_WITH}")
  file(REMOVE_RECURSE ${rdfast_cuda_dir})
  set(RDFAST_CUDA_CONFIGURED_WITH "${rdfast_nvcc}" CACHE INTERNAL "the CUDA compiler of ${rdfast_cuda_dir}")
endif()
string(REPLACE ";" "," rdfast_archs_csv "${rdfast_archs}")  # a list cannot pass through execute_process
set(rdfast_cuda_configure ${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/cuda -B ${rdfast_cuda_dir}
    -G ${CMAKE_GENERATOR} -DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM} -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}
    -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER} -DCMAKE_CUDA_COMPILER=${rdfast_nvcc}
    -DRDFAST_CUDA_ARCHITECTURES=${rdfast_archs_csv} -DRDFAST_SOURCE_DIR=${CMAKE_CURRENT_SOURCE_DIR}
    -DPython_EXECUTABLE=${Python_EXECUTABLE} -Dpybind11_DIR=${pybind11_DIR})
foreach(var CMAKE_CUDA_FLAGS CMAKE_CUDA_HOST_COMPILER)
  if(DEFINED ${var})
    list(APPEND rdfast_cuda_configure "-D${var}=${${var}}")
  endif()
endforeach()

message(STATUS "rdfast: building the CUDA module with ${rdfast_nvcc} for ${rdfast_archs} (RDFAST_CUDA=${rdfast_cuda_mode})")
execute_process(COMMAND ${rdfast_cuda_configure} RESULT_VARIABLE rdfast_cuda_rc
                OUTPUT_VARIABLE rdfast_cuda_log ERROR_VARIABLE rdfast_cuda_log ECHO_OUTPUT_VARIABLE ECHO_ERROR_VARIABLE)
if(rdfast_cuda_rc EQUAL 0)
  execute_process(COMMAND ${CMAKE_COMMAND} --build ${rdfast_cuda_dir} RESULT_VARIABLE rdfast_cuda_rc
                  OUTPUT_VARIABLE rdfast_cuda_log ERROR_VARIABLE rdfast_cuda_log
                  ECHO_OUTPUT_VARIABLE ECHO_ERROR_VARIABLE)
endif()
file(WRITE ${rdfast_cuda_dir}/rdfast_cuda.log "${rdfast_cuda_log}")
if(NOT rdfast_cuda_rc EQUAL 0)
  # the first line in which nvcc or the host compiler says what went wrong, if any
  string(REGEX MATCH "[^\n]*(fatal|error)[ ]*:[^\n]*" rdfast_cuda_error "${rdfast_cuda_log}")
  string(STRIP "${rdfast_cuda_error}" rdfast_cuda_error)
  if(rdfast_cuda_error)
    string(APPEND rdfast_cuda_error "; ")
  endif()
  string(CONCAT rdfast_cuda_reason "building the CUDA module with ${rdfast_nvcc} for ${rdfast_archs} failed "
                "(${rdfast_cuda_error}the whole output is in ${rdfast_cuda_dir}/rdfast_cuda.log)")
  rdfast_cuda_without("${rdfast_cuda_reason}" TRUE)
  return()
endif()
file(READ ${rdfast_cuda_dir}/module_path.txt rdfast_cuda_module)  # written by cmake/cuda/CMakeLists.txt
install(FILES ${rdfast_cuda_module} DESTINATION rdfast)
rdfast_cuda_record(true "")
