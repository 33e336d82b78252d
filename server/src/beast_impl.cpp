// Beast is compiled once, here (BOOST_BEAST_SEPARATE_COMPILATION is set on bufpool_server_core).
#include <boost/beast/src.hpp>
