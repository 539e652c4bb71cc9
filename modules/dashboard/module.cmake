# Included by sales_add_module() for modules/dashboard (variables dir,
# name): the files of page/ become C arrays in the module, so the page
# ships inside dashboard.so and needs no file at run time.  embed.cmake
# runs at build time, again whenever a page file changes.
set(DASHBOARD_PAGE index.html app.js style.css icon.svg)
set(DASHBOARD_OUT ${CMAKE_BINARY_DIR}/generated/dashboard_assets.c)
set(DASHBOARD_DEPS)
foreach(f ${DASHBOARD_PAGE})
  list(APPEND DASHBOARD_DEPS ${dir}/page/${f})
endforeach()
string(REPLACE ";" "," DASHBOARD_LIST "${DASHBOARD_PAGE}")
add_custom_command(OUTPUT ${DASHBOARD_OUT}
  COMMAND ${CMAKE_COMMAND} -DPAGE_DIR=${dir}/page
          -DFILES=${DASHBOARD_LIST} -DOUT=${DASHBOARD_OUT}
          -P ${dir}/embed.cmake
  DEPENDS ${dir}/embed.cmake ${DASHBOARD_DEPS}
  COMMENT "Embedding the dashboard page"
  VERBATIM)
target_sources(mod_${name} PRIVATE ${DASHBOARD_OUT})
