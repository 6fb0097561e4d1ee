/* Macros from system headers that cppcheck does not read (make lint passes this file
 * with --include so it can follow code written with them). */
#define cJSON_ArrayForEach(element, array)                                                         \
    for (element = (array != NULL) ? (array)->child : NULL; element != NULL;                       \
         element = element->next)
