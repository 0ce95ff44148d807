# cmake -DIN=<file.cu> -DOUT=<file.cpp> -P launch_syntax.cmake
# Writes the .cu source as C++ for the CUDA emulation (cuemu.h): the one construct C++ cannot
# parse, `kernel<<<config>>>(args)`, becomes `::whale::cuemu::launch(kernel, config)(args)`;
# every other character stays, and a #line keeps compiler messages pointing at the .cu file.
file(READ "${IN}" src)
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_]*(<[^<>;()]*>)?)[ \t]*<<<([^;]*)>>>" "::whale::cuemu::launch(\\1, \\3)"
       out "${src}")
string(REGEX MATCH "<<<|>>>" left "${out}")
if(left)
  message(FATAL_ERROR "${IN}: a kernel launch the rewrite does not understand (write it as name<<<config>>>(args))")
endif()
set(out "#line 1 \"${IN}\"\n${out}")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL out)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${out}")
