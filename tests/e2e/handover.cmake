# Client library end-to-end (issue 4): direct handover between the example server and a second
# build (handover_app) of a server on libbaton, under load; and the installed package.
add_executable(handover_app e2e/handover_app.cc ${PROJECT_SOURCE_DIR}/examples/http_worker.cc)
target_include_directories(handover_app PRIVATE ${PROJECT_SOURCE_DIR}/examples)
target_link_libraries(handover_app PRIVATE baton::baton baton_common Threads::Threads)
baton_add_test(handover_e2e_test OUT_OF_PROCESS SOURCES e2e/handover_e2e_test.cc LIBS baton_common baton_test_notify LABELS e2e)
target_compile_definitions(handover_e2e_test PRIVATE HANDOVER_APP_BIN="$<TARGET_FILE:handover_app>")
add_dependencies(handover_e2e_test handover_app baton-example-http)

# Install + find_package + pkg-config, checked by building a consumer against the install tree.
baton_add_test(lib_install_test OUT_OF_PROCESS SOURCES e2e/lib_install_test.cc LABELS e2e)
target_compile_definitions(lib_install_test PRIVATE
  BATON_CMAKE="${CMAKE_COMMAND}"
  BATON_LIB_BUILD_DIR="${PROJECT_BINARY_DIR}/src/lib"
  BATON_LIBDIR="${CMAKE_INSTALL_LIBDIR}"
  BATON_CONSUMER_SRC="${CMAKE_CURRENT_SOURCE_DIR}/e2e/lib_consumer"
  # A sanitized libbaton.a needs the sanitizer runtime in whatever links it.
  BATON_CONSUMER_FLAGS="$<$<BOOL:${BATON_SANITIZE}>:-fsanitize=address,undefined>")
add_dependencies(lib_install_test baton_lib)
