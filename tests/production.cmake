# Issue 10: what operators rely on (never orphan, sd_notify to baton's manager, example units).
baton_add_test(production_e2e_test OUT_OF_PROCESS SOURCES e2e/production_test.cc LIBS nlohmann_json::nlohmann_json LABELS e2e)
add_dependencies(production_e2e_test baton baton-testapp)
target_compile_definitions(production_e2e_test PRIVATE BATON_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
baton_add_test(manager_notify_test SOURCES unit/manager_notify_test.cc LIBS baton_supervisor LABELS unit)
baton_add_test(output_sink_test SOURCES unit/output_sink_test.cc unit/log_test.cc LIBS baton_supervisor LABELS unit)
baton_add_test(default_control_path_test SOURCES unit/default_control_path_test.cc LIBS baton_supervisor LABELS unit)
# baton as PID 1 of a PID namespace (a container's entrypoint), and the example Dockerfile.
baton_add_test(pid1_e2e_test OUT_OF_PROCESS SOURCES e2e/pid1_test.cc LIBS nlohmann_json::nlohmann_json LABELS e2e)
add_dependencies(pid1_e2e_test baton baton-testapp baton-example-http)
target_compile_definitions(pid1_e2e_test PRIVATE BATON_TEST_SOURCE_DIR="${CMAKE_SOURCE_DIR}"
                           BATON_CMAKE="${CMAKE_COMMAND}")
baton_add_test(upgrade_e2e_test OUT_OF_PROCESS SOURCES e2e/upgrade_e2e_test.cc LIBS nlohmann_json::nlohmann_json LABELS e2e)
add_dependencies(upgrade_e2e_test baton baton-testapp)
# baton's lines in a real systemd-journald (a private one, in a mount namespace: root only; a
# skip elsewhere).
find_program(BATON_PYTHON3 python3 REQUIRED)
add_test(NAME Journald.BatonLinesArriveWithThePriorityOfTheirLevel
         COMMAND ${BATON_PYTHON3} ${CMAKE_CURRENT_SOURCE_DIR}/e2e/journald_test.py $<TARGET_FILE:baton>)
set_tests_properties(Journald.BatonLinesArriveWithThePriorityOfTheirLevel PROPERTIES
                     LABELS e2e RUN_SERIAL TRUE TIMEOUT 120 SKIP_RETURN_CODE 77)
