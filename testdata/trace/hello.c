/*
 * libhello.so: the plugin the host loads by the path in $PLUGIN. It needs
 * libm (DT_NEEDED), which the host itself does not, so a closure that adds
 * the plugin must also resolve the plugin's own libraries.
 */
#include <math.h>
#include <stdio.h>

const char *hello(double x)
{
	static char buf[64];
	snprintf(buf, sizeof buf, "hello from the plugin, sqrt(%g) = %g", x, sqrt(x));
	return buf;
}
