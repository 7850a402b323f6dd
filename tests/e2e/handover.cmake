# Direct handover end-to-end: the example server and a second build (handover_app) of a server on
# libbaton, handing listeners to each other under load.
add_executable(handover_app e2e/handover_app.cc ${PROJECT_SOURCE_DIR}/examples/http_worker.cc)
target_include_directories(handover_app PRIVATE ${PROJECT_SOURCE_DIR}/examples)
target_link_libraries(handover_app PRIVATE baton::baton baton_common Threads::Threads)
baton_add_test(handover_e2e_test SOURCES e2e/handover_e2e_test.cc e2e/handover_load.cc LIBS baton_common LABELS e2e)
target_compile_definitions(handover_e2e_test PRIVATE HANDOVER_APP_BIN="$<TARGET_FILE:handover_app>")
add_dependencies(handover_e2e_test handover_app baton-example-http)
